"""The live dashboard in a real browser: JupyterLab + headless chromium (playwright).

A notebook starts ``%routilux monitor`` and then posts jobs from a cell that keeps the
kernel's main thread busy for a few seconds. While that cell still runs, the view's tick
(``data-tick`` on ``.rlx-dash``) must keep rising: the pump thread's deltas reach the
browser. At the end the counters the page shows must match the jobs posted. A screenshot
goes to tests/output/.
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
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.allow_thread_leak]

JOBS = 600
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip

CELLS = [
    """\
%load_ext routilux_jupyter
import time
import routilux_jupyter
from routilux import Flow, Routine, Runtime
from routilux.activation_policies import immediate_policy
from routilux.sync import TracedLock

lock = TracedLock("db")
def work(slot_data, policy_message, worker_state):
    with lock:
        time.sleep(0.002)

r = Routine(); r.add_slot("in"); r.set_logic(work); r.set_activation_policy(immediate_policy())
flow = Flow("browser-flow"); flow.add_routine(r, "work")
runtime = Runtime(thread_pool_size=4, trace=True)
runtime.exec("browser-flow")
""",
    "%routilux monitor runtime",
    f"""\
for batch in range(30):  # keeps the kernel's main thread busy for about 3 s
    for i in range({JOBS // 30}):
        runtime.post("browser-flow", "work", "in", {{"i": i}})
    time.sleep(0.1)
runtime.wait_until_all_jobs_finished(timeout=120)
print("POSTED", runtime.statistics().posted)
""",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def isolated_env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR",
                 "JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR"):  # fmt: skip
        path = root / name.lower()
        path.mkdir()
        env[name] = str(path)
    settings = Path(env["JUPYTERLAB_SETTINGS_DIR"]) / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
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


def stop_server(base: str, token: str, proc: subprocess.Popen[Any]) -> None:
    try:
        request = urllib.request.Request(
            f"{base}/api/shutdown", method="POST", headers={"Authorization": f"token {token}"}
        )
        urllib.request.urlopen(request, timeout=5).close()
        proc.wait(10)
    except (OSError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def dash_tick(page: Any) -> int:
    value = page.get_attribute(".rlx-dash", "data-tick")
    return int(value) if value else 0


@pytest.mark.timeout(300)
def test_dashboard_updates_in_the_browser_while_a_cell_runs(
    tmp_path: Path, chromium_executable: str, output_dir: Path
) -> None:
    from playwright.sync_api import sync_playwright

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    nb.metadata["kernelspec"] = {
        "name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"
    }  # fmt: skip
    work = tmp_path / "work"
    work.mkdir()
    nbformat.write(nb, work / "live.ipynb")
    env = isolated_env(tmp_path)
    port, token = free_port(), secrets.token_hex(16)
    base = f"http://127.0.0.1:{port}"
    lab = Path(sys.executable).with_name("jupyter-lab")
    proc = subprocess.Popen(
        [str(lab), "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--ServerApp.token={token}", f"--ServerApp.root_dir={work}", "--allow-root"],
        env=env, stdout=subprocess.DEVNULL, stderr=(output_dir / "lab.log").open("w"),
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_for_server(f"{base}/api/status?token={token}", proc)
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=chromium_executable, headless=True, args=CHROMIUM_ARGS
            )
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(f"{base}/lab/tree/live.ipynb?token={token}")
            page.wait_for_selector(".jp-Notebook", timeout=60_000)
            page.wait_for_selector(
                ".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000
            )
            try:
                check_live_view(page, output_dir)
            except Exception:
                page.screenshot(path=str(output_dir / "failure.png"), full_page=True)
                outputs = page.locator(".jp-OutputArea-output").all_inner_texts()
                (output_dir / "outputs.txt").write_text("\n----\n".join(outputs))
                raise
            finally:
                browser.close()
    finally:
        stop_server(base, token, proc)


def check_live_view(page: Any, output_dir: Path) -> None:
    """Run all cells; watch the view while the posting cell runs; check the end."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    # JupyterLab may still ask which kernel to use: take the one it proposes.
    accept = page.locator(".jp-Dialog .jp-mod-accept")
    try:
        accept.wait_for(timeout=5_000)
        accept.click()
    except PlaywrightTimeout:  # no dialog this time
        pass
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
    page.click("#jp-MainMenu .lm-MenuBar-item:has-text('Run')")
    page.click(".lm-Menu-item[data-command='runmenu:run-all']")
    page.wait_for_selector(".rlx-dash", timeout=60_000)
    page.wait_for_function(
        "() => Number(document.querySelector('.rlx-dash')?.dataset.tick || 0) > 0",
        timeout=60_000,
    )

    # While the posting cell still runs ([*]), the ticks must keep coming.
    posting_prompt = page.locator(".jp-CodeCell").nth(2).locator(".jp-InputPrompt")
    ticks_while_running = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(ticks_while_running) < 4:
        if "*" in posting_prompt.inner_text():
            ticks_while_running.append(dash_tick(page))
        page.wait_for_timeout(400)
    assert len(ticks_while_running) >= 3, "never saw the posting cell running"
    assert ticks_while_running[-1] > ticks_while_running[0], ticks_while_running

    page.wait_for_selector(f".jp-OutputArea-output:has-text('POSTED {JOBS}')", timeout=120_000)
    page.wait_for_function(
        "n => document.querySelector('.rlx-counters')?.innerText.includes(n + ' completed')",
        arg=str(JOBS),
        timeout=30_000,
    )
    counters = page.inner_text(".rlx-counters")
    canvas_width = page.evaluate("() => document.querySelector('canvas.rlx-timeline').width")
    locks = page.inner_text(".rlx-locks-box")
    slider = page.locator(".widget-slider .widget-label:has-text('pool size')").count()
    whole = page.locator(".jp-OutputArea-output:has(.rlx-dash)")
    whole.scroll_into_view_if_needed()
    whole.screenshot(path=str(output_dir / "dashboard.png"))
    assert f"{JOBS} posted" in counters and f"{JOBS} completed" in counters
    assert canvas_width > 300
    assert slider == 1, "the pool-size slider is missing"
    assert "db" in locks or locks == ""  # the lock shows once it was contended
