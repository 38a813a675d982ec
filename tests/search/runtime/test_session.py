"""`search.runtime.session`: what a local Ray exposes, and free ports (no Ray)."""

from __future__ import annotations

from search.runtime.session import LOOPBACK, dashboard_warning, free_port


def test_exposing_the_dashboard_warns_what_it_allows():
    assert dashboard_warning("127.0.0.1") is None and dashboard_warning("localhost") is None
    text = dashboard_warning("0.0.0.0")
    assert "run code" in text and ("auth_token" in text or "RAY_AUTH_TOKEN" in text)


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
