"""Fixtures and hooks shared by the whole suite.

- ``output_dir``: a fresh per-test folder, tests/output/<test-name>/, for screenshots and
  other artefacts a person may want to look at after the run.
- ``thread_leak_check`` (autouse): a test must not leave non-daemon threads behind. Opt out
  with ``@pytest.mark.allow_thread_leak`` where a library's own threads are out of our hands.
- ``chromium_executable``: /usr/bin/chromium, or a skip that says why it is missing.
- A run that still has non-daemon threads at the very end is ended with os._exit, so a
  leaked thread cannot hang the interpreter's exit (and CI) after the summary was printed.
- Every test without its own ``@pytest.mark.timeout`` gets the configured default
  (``timeout = 120`` in pyproject.toml, unless --timeout or PYTEST_TIMEOUT overrides it).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
OUTPUT_ROOT = TESTS_DIR / "output"
REPO_ROOT = TESTS_DIR.parent

THREAD_JOIN_GRACE = 2.0  # seconds a test's leftover threads get to finish
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_REASON_FILE = REPO_ROOT / "build" / "chromium-unavailable.txt"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "allow_thread_leak: skip the check that the test leaves no non-daemon threads",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give every test without a timeout marker the configured default, explicitly."""
    if not config.pluginmanager.hasplugin("timeout"):
        raise pytest.UsageError(
            "pytest-timeout is not installed, so a hung test would hang the whole run; "
            "install the dev extras: pip install -e '.[dev]' (or run `make test`)"
        )
    # pytest-timeout resolves --timeout, then PYTEST_TIMEOUT, then the ini value.
    default = getattr(config, "_env_timeout", None)
    if default is None:
        default = float(config.getini("timeout") or 0)
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(default))


_exit_status = 0


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Interpreter exit joins every non-daemon thread: a leaked one would hang the run forever."""
    deadline = time.monotonic() + THREAD_JOIN_GRACE
    for thread in _non_daemon_threads():
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    left = _non_daemon_threads()
    if left:
        names = ", ".join(sorted(t.name for t in left))
        sys.stdout.flush()
        print(
            f"\nconftest: non-daemon thread(s) still running at exit: {names}; "
            f"ending the process with status {_exit_status or 1} so the run cannot hang",
            file=sys.stderr,
            flush=True,
        )
        os._exit(_exit_status or 1)


def _non_daemon_threads() -> list[threading.Thread]:
    main = threading.main_thread()
    return [t for t in threading.enumerate() if t is not main and not t.daemon and t.is_alive()]


def pytest_report_header(config: pytest.Config) -> str:
    return f"chromium: {_chromium_status()[1]}"


def _chromium_status() -> tuple[bool, str]:
    if CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK):
        return True, str(CHROMIUM)
    if CHROMIUM_REASON_FILE.exists():
        reason = CHROMIUM_REASON_FILE.read_text().strip()
    else:
        reason = f"{CHROMIUM} is missing (scripts/ensure_chromium.sh installs it as root)"
    return False, f"unavailable: {reason}"


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """Path of Debian's chromium; the test is skipped, with the reason, when it is missing."""
    ok, status = _chromium_status()
    if not ok:
        pytest.skip(f"chromium {status}")
    return status


@pytest.fixture
def output_dir(request: pytest.FixtureRequest) -> Path:
    """An empty folder tests/output/<test-name>/ for this test's artefacts (kept after the run)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name).strip("_") or "test"
    path = OUTPUT_ROOT / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(autouse=True)
def thread_leak_check(request: pytest.FixtureRequest):
    """Fail a test that leaves new non-daemon threads running (after a 2 s grace to join)."""
    before = set(threading.enumerate())
    yield
    if request.node.get_closest_marker("allow_thread_leak") is not None:
        return
    new = [t for t in threading.enumerate() if t not in before and not t.daemon]
    deadline = time.monotonic() + THREAD_JOIN_GRACE
    for thread in new:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    leaked = [t for t in new if t.is_alive()]
    if leaked:
        names = ", ".join(sorted(t.name for t in leaked))
        pytest.fail(
            f"{len(leaked)} non-daemon thread(s) still running {THREAD_JOIN_GRACE:g} s after "
            f"the test: {names}; join or shut down what the test started",
            pytrace=False,
        )
