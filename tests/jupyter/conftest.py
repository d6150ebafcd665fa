"""Fixtures for the routilux_jupyter tests: flows with unique ids, runtimes that always shut
down, dashboards that always close, and IPython's in-process shell with the extension loaded.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from jupyter_helpers import JOIN_TIMEOUT, make_flow

from routilux import Flow, Runtime


@pytest.fixture
def flow() -> Flow:
    return make_flow()


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    rt = Runtime(thread_pool_size=4, trace=True)
    try:
        yield rt
    finally:
        rt.shutdown(wait=True, timeout=10)


@pytest.fixture
def close_dashboards() -> Iterator[None]:
    """Close every dashboard a test leaves open (and check their pumps ended)."""
    yield
    import routilux_jupyter

    for dash in routilux_jupyter.dashboards():
        dash.close()
    stray = [t for t in threading.enumerate() if t.name.startswith("routilux-dashboard-")]
    for t in stray:
        t.join(JOIN_TIMEOUT)
    assert not [t for t in stray if t.is_alive()], "a dashboard pump thread did not end"


@pytest.fixture
def ip(close_dashboards: None) -> Iterator[Any]:
    """IPython's in-process test shell with ``%load_ext routilux_jupyter``; unloaded after."""
    pytest.importorskip("IPython")
    from IPython.testing.globalipapp import get_ipython

    shell = get_ipython()  # one shell per process, started on first use
    shell.run_line_magic("load_ext", "routilux_jupyter")
    before = set(shell.user_ns)
    try:
        yield shell
    finally:
        for name, value in list(shell.user_ns.items()):
            if isinstance(value, Runtime):
                value.shutdown(wait=True, timeout=10)
            if name not in before:
                shell.user_ns.pop(name, None)
        shell.run_line_magic("unload_ext", "routilux_jupyter")


@pytest.fixture
def dashboard_messages(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every message any Dashboard sends from here on, the first one included, in order."""
    from routilux_jupyter import Dashboard

    sent: list[dict[str, Any]] = []
    send = Dashboard._send

    def spy(self: Dashboard, msg: dict[str, Any]) -> None:
        sent.append(msg)
        send(self, msg)

    monkeypatch.setattr(Dashboard, "_send", spy)
    return sent
