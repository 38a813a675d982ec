"""`search.runtime.trainable`: trainable classes of a search and of a grid (no Ray)."""

from __future__ import annotations

from types import SimpleNamespace

from search.runtime.trainable import label_logs, make_grid_trainable, make_trainable


def test_trial_actors_are_named_by_dataset_and_trial(space, capsys):
    cls = make_trainable(data=None, base={"data": {"dataset": "mosei"}}, cpus=1, gpus=0.5)
    assert cls.dataset_name == "mosei"
    assert cls.__repr__(SimpleNamespace(dataset_name="mosei")) == "atsuko_mosei"
    request = cls.default_resource_request({})
    assert request.required_resources == {"CPU": 1, "GPU": 0.5}
    # a reused actor relabels its log lines for each trial: Ray's log monitor reads this line
    from ray._private.ray_constants import LOG_PREFIX_ACTOR_NAME

    label_logs("atsuko_mosei_ab12_00003")
    out, err = capsys.readouterr()
    assert out == err == f"{LOG_PREFIX_ACTOR_NAME}atsuko_mosei_ab12_00003\n"


def test_a_grid_trainable_runs_labelled_points_as_sens_trials():
    points = {"mosi|anchor|seed=1111": ("mosi", {"seed": 1111})}
    cls = make_grid_trainable({"mosi": None}, {"mosi": {}}, points, cpus=2, gpus=0)
    assert cls.dataset_name == "sens"
    assert cls.__repr__(SimpleNamespace(dataset_name="sens")) == "atsuko_sens"
    assert cls.default_resource_request({}).required_resources == {"CPU": 2}
