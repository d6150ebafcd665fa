"""Shared helpers for the browser tests: a throwaway JupyterLab server and headless chromium.

Used by tests/browser/ and tests/jupyter/test_jupyter_browser.py (import it as
``tests.browser._lab``; pyproject's ``pythonpath = ["."]`` puts the repo root on sys.path).

- ``jupyter_lab(root, home, log)``: a JupyterLab server on 127.0.0.1 (free port, random
  token) serving ``root``, with every Jupyter config/data/runtime/settings folder under
  ``home`` (so nothing of the user's setup leaks in, and the news toast is switched off).
  The server runs in its own process group. On exit, even after a failure, it is shut
  down with ``POST /api/shutdown``; then its process group and every process it started
  (kernels run in sessions of their own) are ended, so nothing is left behind.
- ``open_notebook(lab, name, chromium)``: Debian's chromium (never Playwright's download)
  driven by Playwright, headless, with background networking off; yields a page showing
  the notebook once JupyterLab itself says its kernel is connected and idle
  (``wait_for_kernel``: the toolbar's idle indicator can come too early).
- ``run_all_cells(page)``: the menu command Run -> Run All Cells, retried if a dialog
  swallowed it.
- ``dismiss_toasts(page)``, ``save_failure_artifacts(page, folder)``.

Facts behind these choices: /work/shared/notes/jupyter-stack.md.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
SERVER_START_TIMEOUT_S = 60.0
# JupyterLab settings of the test server: no news toast; start the notebook's kernel without
# asking (a "Select Kernel" dialog was seen once, on a loaded machine, popping up after the
# toolbar said idle; its modal backdrop then swallowed Run All).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker": {"autoStartDefaultKernel": True},
}
PAGE_TIMEOUT_MS = 60_000
KERNEL_DIALOG_ACCEPT = ".jp-Dialog .jp-mod-accept"

# What a widget that failed to render shows instead of itself (ipywidgets, anywidget, Lab).
WIDGET_ERROR_TEXTS = (
    "Error displaying widget",
    "model not found",
    "Failed to load model class",
    "Error rendering",
    "Could not create a view",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def isolated_env(root: Path) -> dict[str, str]:
    """Environment whose Jupyter folders all live under ``root``; the news toast is off."""
    env = dict(os.environ)
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR",
                 "JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR"):  # fmt: skip
        path = root / name.lower()
        path.mkdir(parents=True, exist_ok=True)
        env[name] = str(path)
    for plugin, values in LAB_SETTINGS.items():
        folder, name = plugin.rsplit("/", 1)
        path = Path(env["JUPYTERLAB_SETTINGS_DIR"]) / folder / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    return env


def wait_for_server(url: str, proc: subprocess.Popen[Any], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"jupyter lab exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"jupyter lab did not answer at {url} within {timeout} s")


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _signal_group(pgid: int, signum: int) -> None:
    if pgid == os.getpgrp():  # never our own group
        return
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def stop_server(base: str, token: str, proc: subprocess.Popen[Any]) -> None:
    """Shut the server down and leave none of its processes behind.

    ``POST /api/shutdown`` first (the server ends its kernels), then SIGTERM and SIGKILL
    to the server's process group and to any process it started that is still alive:
    jupyter_client starts each kernel in a session of its own, so ending the server's group
    alone would not reach a kernel of a server that hangs.
    """
    children = _descendants(proc.pid)  # the kernels, while the server still knows them
    try:
        request = urllib.request.Request(
            f"{base}/api/shutdown", method="POST", headers={"Authorization": f"token {token}"}
        )
        urllib.request.urlopen(request, timeout=5).close()
        proc.wait(10)
    except (OSError, subprocess.TimeoutExpired):
        pass
    groups = {proc.pid}
    for child in children:
        try:
            if child.is_running():
                groups.add(os.getpgid(child.pid))
        except (psutil.Error, ProcessLookupError):
            pass
    for signum in (signal.SIGTERM, signal.SIGKILL):
        for pgid in groups:
            _signal_group(pgid, signum)
        for child in children:
            try:
                child.send_signal(signum)
            except psutil.Error:
                pass
        _, alive = psutil.wait_procs(children, timeout=5)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            continue
        if not alive:
            break
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass


@dataclass
class Lab:
    """A running JupyterLab server."""

    base: str
    token: str
    proc: subprocess.Popen[Any]
    root: Path

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}?token={self.token}"

    def processes(self) -> list[psutil.Process]:
        """The server and every process it started (kernels included)."""
        try:
            return [psutil.Process(self.proc.pid), *_descendants(self.proc.pid)]
        except psutil.Error:
            return []


@contextmanager
def jupyter_lab(root: Path, home: Path, log: Path) -> Iterator[Lab]:
    """A JupyterLab server on ``root`` in its own process group; always stopped on exit.

    ``home`` holds the server's isolated Jupyter folders; stderr goes to ``log``.
    """
    env = isolated_env(home)
    port, token = free_port(), secrets.token_hex(16)
    base = f"http://127.0.0.1:{port}"
    lab = Path(sys.executable).with_name("jupyter-lab")
    if not lab.exists():
        raise AssertionError(f"{lab} is missing: install the dev extras (make venv)")
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [str(lab), "--no-browser", "--ip=127.0.0.1", f"--port={port}",
             f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}", "--allow-root",
             "--LabApp.expose_app_in_browser=True"],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_for_server(f"{base}/api/status?token={token}", proc, SERVER_START_TIMEOUT_S)
        yield Lab(base, token, proc, root)
    finally:
        stop_server(base, token, proc)


class BrowserLog:
    """What the page did, with times: console lines, page errors, kernel websockets.

    Written line by line to ``path`` (when given), so a failed run can be read afterwards.
    """

    def __init__(self, path: Path | None) -> None:
        self._file = path.open("w", buffering=1) if path is not None else None
        self._t0 = time.monotonic()
        self._sockets = 0

    def write(self, text: str) -> None:
        if self._file is not None:
            self._file.write(f"{time.monotonic() - self._t0:8.3f}  {text}\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def attach(self, page: Any) -> None:
        page.on("console", lambda m: self.write(f"console.{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.write(f"pageerror: {e}"))
        page.on("websocket", self._on_websocket)

    def _on_websocket(self, ws: Any) -> None:
        if "/channels" not in ws.url:
            return
        self._sockets += 1
        n = self._sockets
        self.write(f"kernel websocket {n} opening")
        ws.on("close", lambda _: self.write(f"kernel websocket {n} closed"))
        ws.on("socketerror", lambda e: self.write(f"kernel websocket {n} error: {e}"))


@contextmanager
def open_notebook(
    lab: Lab,
    name: str,
    chromium: str,
    viewport: tuple[int, int] = (1280, 1000),
    log_path: Path | None = None,
) -> Iterator[Any]:
    """Headless chromium showing ``name`` in JupyterLab, its kernel connected and idle.

    Yields the Playwright page; the browser (and Playwright's driver) end on exit. With
    ``log_path``, the page's console, errors and kernel websockets are logged there.
    """
    from playwright.sync_api import sync_playwright

    log = BrowserLog(log_path)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            log.attach(page)
            page.goto(lab.url(f"lab/tree/{name}"))
            page.wait_for_selector(".jp-Notebook")
            wait_for_kernel(page)
            log.write("notebook open, kernel connected and idle")
            yield page
        finally:
            browser.close()
            log.close()


# Needs the server option --LabApp.expose_app_in_browser=True (window.jupyterapp).
KERNEL_READY_JS = """() => {
    const kernel = window.jupyterapp?.shell?.currentWidget?.sessionContext?.session?.kernel;
    return !!kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle';
}"""


def wait_for_kernel(page: Any, timeout_s: float = PAGE_TIMEOUT_MS / 1000) -> None:
    """Wait until the current notebook's kernel websocket is connected and the kernel idle.

    The toolbar's execution indicator is not enough: it can read ``idle`` before the page
    opened its kernel websocket. Running cells then (3 of 6 runs in one batch on a loaded
    2-CPU machine) makes JupyterLab drop that half-open websocket (jupyter_server logs a 500,
    its issue #1265) and reconnect, and ipywidgets' manager, restoring its state on the
    reconnect, loses the widgets just created: "Error displaying widget: model not found".
    So this asks JupyterLab itself (``window.jupyterapp``). A "Select Kernel" dialog on
    the way is accepted.
    """
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(KERNEL_READY_JS):
        if time.monotonic() > deadline:
            raise AssertionError(
                f"the notebook's kernel was not connected and idle in {timeout_s} s"
            )
        accept_kernel_dialog(page)
        page.wait_for_timeout(100)


def accept_kernel_dialog(page: Any) -> bool:
    """If JupyterLab asks which kernel to use, take the one it proposes."""
    accept = page.locator(KERNEL_DIALOG_ACCEPT)
    if not (accept.count() and accept.first.is_visible()):
        return False
    accept.first.click()
    wait_for_kernel(page)
    return True


def run_all_cells(page: Any, attempts: int = 3) -> None:
    """Run -> Run All Cells (the menu command ``runmenu:run-all``), until the cells start.

    Should a "Select Kernel" dialog be open (seen once, on a loaded machine), its modal
    backdrop swallows the menu clicks: accept it and retry.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    started = """() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
                        .some(p => /\\[(\\*|\\d+)\\]/.test(p.innerText))"""
    for _ in range(attempts):
        accept_kernel_dialog(page)
        try:
            page.click("#jp-MainMenu .lm-MenuBar-item:has-text('Run')", timeout=5_000)
            page.click(".lm-Menu-item[data-command='runmenu:run-all']", timeout=5_000)
            page.wait_for_function(started, timeout=10_000)
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")  # close the menu if it is still open
    raise AssertionError(f"Run All Cells did not start any cell in {attempts} attempts")


def dismiss_toasts(page: Any) -> None:
    """Close JupyterLab's notifications (e.g. the news toast) so screenshots show none."""
    from playwright.sync_api import Error as PlaywrightError

    buttons = page.locator(".Toastify__toast .jp-toast-dismiss, .Toastify__close-button")
    for button in buttons.all():
        with suppress(PlaywrightError):  # it may have gone by itself
            button.click(timeout=2_000)
    # Whatever is left (a toast on its way in or out) must not cover a screenshot.
    page.evaluate("() => document.querySelectorAll('.Toastify__toast').forEach(n => n.remove())")


def output_texts(page: Any) -> list[str]:
    """Inner text of every cell output (never the cells' source)."""
    return page.locator(".jp-OutputArea-output").all_inner_texts()


def save_failure_artifacts(page: Any, folder: Path) -> None:
    """A full-page screenshot and every output's text, for a failed run."""
    try:
        page.screenshot(path=str(folder / "failure.png"), full_page=True)
        (folder / "outputs.txt").write_text("\n----\n".join(output_texts(page)))
    except Exception as exc:  # noqa: BLE001 - never hide the original failure
        (folder / "failure-artifacts-error.txt").write_text(repr(exc))
