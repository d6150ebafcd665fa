"""The headless demo (`make demo`) runs, counts exactly and exits 0."""

from __future__ import annotations

import json

import pytest

from routilux import demo


@pytest.mark.timeout(60)
def test_demo_runs_and_writes_a_trace(tmp_path, capsys) -> None:
    path = tmp_path / "demo.json"
    assert demo.main(["--jobs", "300", "--pool", "4", "--io-ms", "0.5", "--trace", str(path)]) == 0
    out = capsys.readouterr().out
    assert "completed 300, failed 0" in out
    assert "store counted 300 items" in out
    assert "traceEvents" in json.loads(path.read_text())


@pytest.mark.timeout(30)
def test_demo_rejects_bad_arguments(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        demo.main(["--jobs", "0"])
    assert exc.value.code == 2
    assert "--jobs must be >= 1, got 0" in capsys.readouterr().err


@pytest.mark.timeout(60)
def test_demo_prints_what_diagnose_finds(capsys) -> None:
    # A healthy run: nothing found, and no claim beyond that.
    assert demo.main(["--jobs", "200", "--pool", "4", "--io-ms", "0.5"]) == 0
    assert "diagnose: no findings" in capsys.readouterr().out


@pytest.mark.timeout(120)
def test_demo_with_seconds_of_queue_wait_is_not_called_healthy(capsys) -> None:
    # One thread, 5 ms of sleep per job, 800 jobs posted at once: about 4 s to drain,
    # and most of each job's latency is waiting for the thread (issue 12, item 7).
    assert demo.main(["--jobs", "800", "--pool", "1", "--io-ms", "5"]) == 0
    out = capsys.readouterr().out
    assert "no findings" not in out
    assert "Pool exhausted: all 1 threads stayed busy" in out
