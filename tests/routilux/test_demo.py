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
