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
