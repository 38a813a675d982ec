"""`search.runtime.session`: what a local Ray exposes, and free ports (no Ray)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from search.runtime.session import (
    LOOPBACK,
    dashboard_access,
    dashboard_warning,
    free_port,
    unused_dashboard_flags,
)


def test_exposing_the_dashboard_warns_what_it_allows():
    assert dashboard_warning("127.0.0.1") is None and dashboard_warning("localhost") is None
    text = dashboard_warning("0.0.0.0")
    assert "run code" in text and ("auth_token" in text or "RAY_AUTH_TOKEN" in text)


@pytest.mark.parametrize("mode", ["disabled", "DISABLED"])
def test_auth_turned_off_by_the_user_is_what_the_console_says(monkeypatch, mode):
    monkeypatch.setenv("RAY_AUTH_MODE", mode)
    for text in (dashboard_access(), dashboard_warning("0.0.0.0")):
        assert f"RAY_AUTH_MODE={mode}" in text and "auth_token" not in text, text
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    assert dashboard_access().startswith("access token: ") and "auth_token" in dashboard_access()


def test_dashboard_flags_with_address_are_named_as_unused():
    flags = {"dashboard_host": "0.0.0.0", "dashboard_port": 9000, "metrics_port": None}
    joined = SimpleNamespace(address="head:6379", **flags)
    note = unused_dashboard_flags(joined)
    assert "--dashboard-host 0.0.0.0, --dashboard-port 9000 not used" in note
    assert "head:6379" in note and len(note.splitlines()) == 1
    assert unused_dashboard_flags(SimpleNamespace(**{**vars(joined), "address": None})) is None
    plain = SimpleNamespace(address="head:6379", dashboard_host=LOOPBACK)
    assert (
        unused_dashboard_flags(
            SimpleNamespace(**vars(plain), dashboard_port=None, metrics_port=None)
        )
        is None
    )


def test_a_free_port_is_the_preferred_one_when_it_is_free():
    port = free_port()
    assert 0 < port < 65536
    assert free_port(port, LOOPBACK) == port


def test_the_drivers_modules_leave_ray_unimported():
    """Ray reads `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER` when it is imported: a module that imports
    it before `session.start` sets it would put the local Ray on the machine's address."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import search.study.driver, search.workflow, search.bench.record, "
        "search.bench.replay_bench, search.bench.simulate\n"
        "print('ray' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr[-2000:]
