"""`search.study.driver`'s progress table: the parameter columns Tune's table can look up."""

from __future__ import annotations


def test_the_progress_table_shows_only_parameters_every_trial_has(space):
    from search.study.driver import shown_parameters

    shown = shown_parameters(space)
    assert shown == ["num_bands", "tau_mod", "tau_c", "lambda_mcm", "lambda_kd"]
    assert not {"band_split", "tau_band"} & set(shown)  # absent when num_bands is 1
