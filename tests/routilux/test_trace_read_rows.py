"""Tracer.read_rows: the same events as read(), as plain tuples (for folding readers)."""

from __future__ import annotations

import pytest

from routilux.trace import TraceEvent, Tracer


@pytest.mark.timeout(10)
def test_read_rows_matches_read_field_by_field() -> None:
    tracer = Tracer(capacity=4)
    for k in range(6):  # wraps: the two oldest are dropped
        tracer.record("task.started", f"job-{k}", "r", "in", k / 10, {"k": k}, "w")
    rows = tracer.read_rows()
    assert [type(row) for row in rows] == [tuple] * 4
    assert [TraceEvent._make(row) for row in rows] == tracer.read()
    assert tracer.read_rows(since=5) == [tuple(tracer.read(since=5)[0])]
    assert tracer.read_rows(since=6) == []


@pytest.mark.timeout(10)
@pytest.mark.parametrize(("since", "error"), [(-1, ValueError), ("0", TypeError)])
def test_read_rows_checks_since_like_read(since: object, error: type) -> None:
    with pytest.raises(error, match="since must be"):
        Tracer().read_rows(since)  # type: ignore[arg-type]
