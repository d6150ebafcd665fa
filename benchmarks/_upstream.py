"""The virtual environment holding upstream Routilux from PyPI, apart from ours.

``ensure_upstream_venv()`` creates ``benchmarks/.upstream-venv`` (gitignored) on first use
and installs ``routilux==1.1.0`` into it with pip; if that version cannot be installed it
tries the newest release and says so. Its interpreter runs ``_upstream_driver.py``, so the
two packages named ``routilux`` never meet in one process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".upstream-venv"
PINNED = "routilux==1.1.0"
INSTALL_TIMEOUT_S = 600  # seconds for venv creation plus pip


@dataclass(frozen=True)
class Upstream:
    python: str | None  # the venv's interpreter, None when unavailable
    version: str | None  # the installed routilux version
    note: str  # how it was obtained, or why it is unavailable


def _python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def child_env() -> dict[str, str]:
    """Environment for the upstream interpreter: no PYTHONPATH leaking our package in."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONHOME", None)
    return env


def _installed_version(python: Path) -> str | None:
    try:
        out = subprocess.run(
            [str(python), "-c", ("from importlib.metadata import version; "
                                "print(version('routilux'))")],
            check=False, capture_output=True, text=True, timeout=60, env=child_env(),
            cwd=str(VENV),
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _pip(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", *args],
        check=False, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S,
        env=child_env(),
    )


def _base_python() -> str:
    """The interpreter to build the venv from: the one behind ours, not our venv."""
    return getattr(sys, "_base_executable", None) or sys.executable


def ensure_upstream_venv(log=print) -> Upstream:
    """Create or reuse the upstream venv; never raises (an unavailable upstream is a row)."""
    python = _python()
    if python.exists():
        version = _installed_version(python)
        if version is not None:
            return Upstream(str(python), version, f"routilux {version} from PyPI (reused venv)")
    try:
        log(f"creating {VENV.relative_to(HERE.parent)} and installing {PINNED} ...")
        subprocess.run([_base_python(), "-m", "venv", "--clear", str(VENV)], check=True,
                       capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
        pinned = _pip(python, PINNED)
        if pinned.returncode == 0:
            note = f"{PINNED} from PyPI"
        else:
            reason = " ".join(pinned.stderr.strip().splitlines()[-2:])[:300]
            log(f"{PINNED} is not installable ({reason}); trying the newest release")
            newest = _pip(python, "routilux")
            if newest.returncode != 0:
                reason2 = " ".join(newest.stderr.strip().splitlines()[-2:])[:300]
                return Upstream(None, None, f"upstream not installable: {PINNED}: {reason}; "
                                            f"newest: {reason2}")
            note = f"{PINNED} not installable ({reason}); newest release instead"
    except (OSError, subprocess.SubprocessError) as exc:
        return Upstream(None, None, f"could not create the upstream venv: {exc}")
    version = _installed_version(python)
    if version is None:
        return Upstream(None, None, "upstream venv created but routilux does not import")
    return Upstream(str(python), version, f"{note} (routilux {version})")
