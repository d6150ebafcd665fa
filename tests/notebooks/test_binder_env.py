"""The Binder environment: binder/requirements.txt installs into a fresh venv and runs the
quickstart notebook there.

The install test needs the package index (``-m "not network"`` skips it offline) and takes
about a minute with pip's cache warm. It runs from a copy of the repository's installable
files, as Binder does from the repository root, so the working tree is never written to.
The notebook is executed by the new venv's own nbclient (it comes with jupyterlab), so its
``python3`` kernel is that venv's python; Jupyter's data, config and runtime folders point
into the test's temporary folder, so no kernelspec of this machine can interfere.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BINDER = REPO_ROOT / "binder"
REQUIREMENTS = BINDER / "requirements.txt"
QUICKSTART = "00_quickstart.ipynb"
INSTALL_TIMEOUT_S = 900  # seconds pip may take (a cold cache downloads ~100 wheels)
RUN_TIMEOUT_S = 300  # seconds the quickstart may take in the new venv
# What the repository copy needs for `pip install .[jupyter]` and the quickstart.
COPY = ("pyproject.toml", "README.md", "routilux", "routilux_jupyter", "binder")

# Runs inside the new venv: execute the quickstart, then report the kernel's interpreter.
DRIVER = """\
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

path, out = Path(sys.argv[1]), Path(sys.argv[2])
nb = nbformat.read(path, as_version=4)
nb.cells.append(nbformat.v4.new_code_cell(
    "import sys, routilux\\nprint('KERNEL', sys.executable, routilux.__file__)"))
try:
    NotebookClient(nb, kernel_name="python3", timeout=120,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
finally:
    nbformat.write(nb, out)
print(nb.cells[-1].outputs[0]["text"].strip())
"""


def _pins() -> dict[str, str]:
    pins = {}
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split(" #")[0].strip()
        if not line or line.startswith(("#", ".")):
            continue
        name, sep, version = line.partition("==")
        assert sep and version, f"binder/requirements.txt: {line!r} is not pinned with =="
        pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def test_binder_files_pin_what_the_notebooks_need() -> None:
    pins = _pins()
    lines = [ln.split(" #")[0].strip() for ln in REQUIREMENTS.read_text().splitlines()]
    assert ".[jupyter,dask]" in lines, "binder/requirements.txt must install this repository"
    for name in ("jupyterlab", "ipykernel", "ipywidgets", "anywidget", "matplotlib", "pandas",
                 "nest-asyncio2", "nbclient"):
        assert name in pins, f"binder/requirements.txt does not pin {name}"
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    for req in extras["project"]["optional-dependencies"]["jupyter"]:
        name = re.split(r"[<>=!~\[ ;]", req, maxsplit=1)[0]
        assert re.sub(r"[-_.]+", "-", name).lower() in pins, f"{name} (jupyter extra) unpinned"
    runtime = (BINDER / "runtime.txt").read_text().strip()
    assert re.fullmatch(r"python-3\.\d+", runtime), runtime


@pytest.mark.network
@pytest.mark.slow
@pytest.mark.timeout(INSTALL_TIMEOUT_S + RUN_TIMEOUT_S + 60)
def test_binder_requirements_install_and_run_the_quickstart(
    tmp_path: Path, output_dir: Path
) -> None:
    repo = tmp_path / "repo"
    for name in COPY:
        src = REPO_ROOT / name
        if src.is_dir():
            shutil.copytree(src, repo / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            repo.mkdir(exist_ok=True)
            shutil.copy2(src, repo / name)
    (repo / "notebooks").mkdir()
    shutil.copy2(REPO_ROOT / "notebooks" / QUICKSTART, repo / "notebooks" / QUICKSTART)

    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if k not in (
        "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "JUPYTER_PATH", "JUPYTER_CONFIG_PATH")}
    log = output_dir / "pip-install.log"
    with log.open("w") as fh:  # pip's cache is used: no --no-cache-dir
        pip = subprocess.run(
            [str(python), "-m", "pip", "install", "--disable-pip-version-check",
             "-r", "binder/requirements.txt"],
            check=False, cwd=repo, env=env, stdout=fh, stderr=subprocess.STDOUT,
            timeout=INSTALL_TIMEOUT_S,
        )
    assert pip.returncode == 0, f"pip install failed; see {log}:\n" + log.read_text()[-3000:]

    home = tmp_path / "jupyter-home"
    env.update(
        HOME=str(home),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        IPYTHONDIR=str(home / "ipython"),
        MPLCONFIGDIR=str(home / "matplotlib"),
    )
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    run = subprocess.run(
        [str(python), str(driver), str(repo / "notebooks" / QUICKSTART),
         str(output_dir / QUICKSTART)],
        check=False, cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert run.returncode == 0, f"the quickstart failed in the Binder venv:\n{run.stderr[-4000:]}"
    kernel = run.stdout.strip().splitlines()[-1].split()
    assert kernel[0] == "KERNEL", run.stdout
    assert Path(kernel[1]).parent == venv / "bin", f"kernel ran in {kernel[1]}"
    assert Path(kernel[2]).is_relative_to(venv), f"routilux imported from {kernel[2]}"
