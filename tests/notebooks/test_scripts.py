"""scripts/notebooks_html.py (``make notebooks-html``) and scripts/soak.py (``make soak``).

On tiny notebooks made here: a failing notebook is rendered anyway, named in the summary,
and makes the exit status 1, and the notebooks after it still run (#12: nbconvert stopped
at the first failure and the target exited 0); soak counts passes per notebook and mode,
and its CPU hogs end when it does.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("nbconvert")
pytest.importorskip("ipykernel")

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def load_script(name: str) -> ModuleType:
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))  # soak imports notebooks_html from beside it
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def notebook(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src) for src in sources]
    nbformat.write(nb, path)
    return path


@pytest.fixture
def tiny(tmp_path: Path) -> dict[str, Path]:
    return {
        "good": notebook(tmp_path / "a_good.ipynb", "x = 6 * 7", "print('answer', x)"),
        "bad": notebook(tmp_path / "b_bad.ipynb", "print('before')",
                        "assert 1 + 1 == 3, 'arithmetic is broken'", "print('never')"),
        "after": notebook(tmp_path / "c_after.ipynb", "print('after the failure')"),
    }


@pytest.mark.slow
@pytest.mark.allow_thread_leak  # nbclient's own threads
@pytest.mark.timeout(240)
def test_notebooks_html_renders_every_notebook_and_names_the_failed_one(
    tiny: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = load_script("notebooks_html")
    out = tmp_path / "html"
    code = script.main(["--output-dir", str(out), str(tiny["good"]), str(tiny["bad"]),
                        str(tiny["after"])])
    printed = capsys.readouterr()
    assert code == 1
    assert "FAILED: b_bad.ipynb" in printed.err
    assert "b_bad.ipynb: cell 1 (\"assert 1 + 1 == 3" in printed.err
    assert "AssertionError: arithmetic is broken" in printed.err
    assert "a_good" not in printed.err and "c_after" not in printed.err
    assert "rendered 2 of 3 notebooks without errors" in printed.err
    # every notebook was rendered: the failed one with its outputs up to the failure
    assert sorted(p.name for p in out.iterdir()) == ["a_good.html", "b_bad.html",
                                                     "c_after.html"]
    assert "answer 42" in (out / "a_good.html").read_text()
    bad = (out / "b_bad.html").read_text()
    assert "before" in bad and "arithmetic is broken" in bad and "never</pre>" not in bad
    assert "after the failure" in (out / "c_after.html").read_text()


def test_notebooks_html_summary_and_bad_input(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    script = load_script("notebooks_html")
    ok = script.Outcome(tmp_path / "x.ipynb", 1.0)
    failed = script.Outcome(tmp_path / "y.ipynb", 1.0, "cell 2 ('boom()'): ValueError: no")
    assert script.summary([ok]) == ("rendered 1 of 1 notebooks without errors", 0)
    text, code = script.summary([ok, failed])
    assert code == 1 and text.splitlines()[1:] == [
        "FAILED: y.ipynb", "  y.ipynb: cell 2 ('boom()'): ValueError: no"]
    assert script.summary([])[1] == 1
    assert script.main([str(tmp_path / "missing.ipynb")]) == 1
    assert "no such notebook" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.allow_thread_leak  # nbclient's own threads
@pytest.mark.timeout(240)
def test_soak_counts_passes_per_notebook_and_mode(tiny: dict[str, Path], tmp_path: Path) -> None:
    soak = load_script("soak")
    lines: list[str] = []
    kept = tmp_path / "kept"
    results = soak.soak([tiny["good"], tiny["bad"]], runs=1, hogs=1,
                        modes=("quiet", "hogs"), log=lines.append, keep_failed=kept)
    assert set(results) == {"quiet", "hogs"}
    for mode in ("quiet", "hogs"):
        assert results[mode]["a_good.ipynb"] == [None]
        [error] = results[mode]["b_bad.ipynb"]
        assert error.startswith("cell 1 (") and "AssertionError" in error
    assert soak.failed(results)
    table = soak.table(results, hogs=1).splitlines()
    assert table[0].split() == ["notebook", "quiet", "1", "CPU", "hogs"]
    assert table[1].split() == ["a_good.ipynb", "1/1", "pass", "1/1", "pass"]
    assert table[2].split() == ["b_bad.ipynb", "0/1", "pass", "0/1", "pass"]
    assert table[3] == "failures:"
    assert len(lines) == 4 and lines[0].startswith("[quiet 1/1] a_good.ipynb: pass")
    assert not soak.failed({"quiet": {"a_good.ipynb": [None, None]}})
    # each failed run's executed notebook is kept, to read why it failed
    assert sorted(p.name for p in kept.iterdir()) == ["hogs-1-b_bad.ipynb",
                                                      "quiet-1-b_bad.ipynb"]
    assert "arithmetic is broken" in (kept / "quiet-1-b_bad.ipynb").read_text()


def test_soak_cpu_hogs_spin_inside_the_block_and_end_after_it() -> None:
    soak = load_script("soak")
    with soak.cpu_hogs(2) as hogs:
        assert len(hogs) == 2 and all(h.poll() is None for h in hogs)
    assert all(h.poll() is not None for h in hogs)
    with pytest.raises(KeyboardInterrupt), soak.cpu_hogs(1) as hogs:
        raise KeyboardInterrupt  # an interrupted soak ends its hogs too
    assert hogs[0].poll() is not None
