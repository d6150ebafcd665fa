"""``%routilux tune --auto``: switches a live runtime to automatic pool sizing (issue #18)."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("IPython")

from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from routilux import Runtime


@pytest.mark.timeout(60)
def test_tune_auto_switches_the_named_runtime_on(ip: Any) -> None:
    rt = Runtime(thread_pool_size=3, trace=True, max_pool_size=12)
    ip.user_ns["rt"] = rt
    try:
        with capture_output() as cap:
            ip.run_line_magic("routilux", "tune --auto --apply-to rt")
        assert "automatic pool sizing on: 3 threads now" in cap.stdout
        assert "max_pool_size 12" in cap.stdout
        s = rt.statistics()
        assert s.pool_auto and s.pool_size == 3
        (on,) = [e for e in rt.tracer.read(0) if e.kind == "pool.autosize"]
        assert (on.name, on.value) == ("on", 3)
        rt.resize(2)  # the user's size wins
        assert not rt.statistics().pool_auto
    finally:
        rt.shutdown()


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("line", "match"), [
    ("tune --auto f r s", "takes no FLOW ROUTINE SLOT; name the runtime with --apply-to"),
    ("tune --auto --apply-to shared", "cannot resize"),
    ("tune f r", "the following arguments are required: FLOW, ROUTINE, SLOT .or --auto"),
])
def test_tune_auto_bad_uses(ip: Any, line: str, match: str) -> None:
    import routilux

    ip.user_ns["shared"] = shared = Runtime(thread_pool_size=0)
    try:
        with pytest.raises(UsageError, match=match):
            ip.run_line_magic("routilux", line)
    finally:
        shared.shutdown()
        routilux.reset_worker_manager()
