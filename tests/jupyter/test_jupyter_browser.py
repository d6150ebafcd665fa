"""The live dashboard in a real browser: JupyterLab + headless chromium (playwright).

A notebook starts ``%routilux monitor`` and then posts jobs from a cell that keeps the
kernel's main thread busy for a few seconds. While that cell still runs, the view's tick
(``data-tick`` on ``.rlx-dash``) must keep rising: the pump thread's deltas reach the
browser. At the end the counters the page shows must match the jobs posted. A screenshot
goes to tests/output/.

A second, cheap test loads the view's module alone (no JupyterLab) and hovers the real
pointer over the automatic-sizing decisions on the pool-size line.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("playwright.sync_api")

from tests.browser._lab import (  # noqa: E402 - after the importorskips
    jupyter_lab,
    open_notebook,
    run_all_cells,
    save_failure_artifacts,
)

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.allow_thread_leak]

JOBS = 600
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


def dash_tick(page: Any) -> int:
    value = page.get_attribute(".rlx-dash", "data-tick")
    return int(value) if value else 0


@pytest.mark.timeout(300)
def test_dashboard_updates_in_the_browser_while_a_cell_runs(
    tmp_path: Path, chromium_executable: str, output_dir: Path
) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    nb.metadata["kernelspec"] = {
        "name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"
    }  # fmt: skip
    work = tmp_path / "work"
    work.mkdir()
    nbformat.write(nb, work / "live.ipynb")
    with (
        jupyter_lab(work, tmp_path / "jupyter", output_dir / "lab.log") as lab,
        open_notebook(
            lab, "live.ipynb", chromium_executable, log_path=output_dir / "browser.log"
        ) as page,
    ):
        try:
            check_live_view(page, output_dir)
        except Exception:
            save_failure_artifacts(page, output_dir)
            raise


def check_live_view(page: Any, output_dir: Path) -> None:
    """Run all cells; watch the view while the posting cell runs; check the end."""
    run_all_cells(page)
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


# -- the sizing decisions' hover text, in the view alone (no JupyterLab: cheap) -------------

DECISIONS_DELTA = {
    "tick": 1, "v": 1, "reset": False, "t": 2.0, "window_s": 30,
    "samples": [[0.0, 0, 0, 6], [0.5, 40, 6, 6], [0.5, 40, 6, 17], [1.5, 0, 12, 17],
                [1.9, 0, 12, 3]],
    "decisions": [[0.0, "on", 6, 6, "thread_pool_size='auto': start at 6"],
                  [0.5, "probe", 6, 17, "6 -> 17: arrivals 297/s x 43.6 ms service need "
                   "13 threads, plus 40 queued"],
                  [1.9, "off", 3, 3, "automatic sizing off: resize(3) by the user"]],
    "auto": True, "auto_reason": "hold 17: arrivals 297/s need 13 threads",
    "pool": {"size": 17, "threads": 17, "busy": 12, "idle": 5, "queued": 0},
    "status": "live", "error": None, "tracing": True,
}


@pytest.mark.timeout(120)
def test_sizing_decisions_show_their_reason_on_hover(
    chromium_executable: str, output_dir: Path
) -> None:
    """_widget.js in headless chromium, fed one delta by a stand-in for the widget's model
    (the anywidget contract: get, on, off, send): each decision is a marker whose reason
    appears in the tooltip and the canvas title when the real pointer is over it; the
    auto badge shows the controller's latest words and goes when sizing turns off."""
    import json

    from playwright.sync_api import sync_playwright

    from routilux_jupyter._widgets import _read_asset
    from tests.browser._lab import CHROMIUM_ARGS

    source = _read_asset("_widget.js").replace("export default { render };",
                                               "window.rlxWidget = { render };")
    assert "window.rlxWidget" in source
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_executable, headless=True,
                                    args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 700})
            page.set_content(f"<style>{_read_asset('_widget.css')}</style>"
                             "<div id='host' style='width: 900px'></div>")
            page.add_script_tag(content=source, type="module")
            page.wait_for_function("() => window.rlxWidget")
            page.evaluate("""delta => {
                const handlers = {};
                window.rlxModel = {
                  value: delta, get: () => window.rlxModel.value,
                  on: (name, f) => { handlers[name] = f; }, off: () => {}, send: () => {},
                  set(v) { this.value = v; handlers["change:_delta"](); },
                };
                window.rlxWidget.render({ model: window.rlxModel,
                                          el: document.getElementById("host") });
            }""", DECISIONS_DELTA)
            canvas = page.locator("canvas.rlx-series")
            assert canvas.get_attribute("data-decisions") == "3"
            badge = page.locator(".rlx-badge-auto")
            assert badge.is_visible() and badge.get_attribute("title") == DECISIONS_DELTA[
                "auto_reason"]
            assert DECISIONS_DELTA["auto_reason"] in page.inner_text(".rlx-auto-line")
            hits = page.evaluate("() => document.querySelector('canvas.rlx-series').rlxHits")
            box = canvas.bounding_box()
            for hit, (t, action, _old, _new, reason) in zip(
                    hits, DECISIONS_DELTA["decisions"], strict=True):
                page.mouse.move(box["x"] + hit["x"], box["y"] + hit["y"])
                tip = page.locator(".rlx-tip")
                assert tip.is_visible()
                assert tip.inner_text() == f"{t:.2f} s · {action}: {reason}"
                assert canvas.get_attribute("title") == tip.inner_text()
                if action == "probe":
                    page.locator(".rlx-dash").screenshot(path=str(output_dir / "hover.png"))
            page.mouse.move(box["x"] + 2, box["y"] + 2)  # off every marker: no tooltip
            assert not page.locator(".rlx-tip").is_visible()
            assert canvas.get_attribute("title") == ""
            off = json.loads(json.dumps(DECISIONS_DELTA))
            off.update(tick=2, t=2.1, samples=[], decisions=[], auto=False, auto_reason=None,
                       pool={**off["pool"], "size": 3})
            page.evaluate("delta => window.rlxModel.set(delta)", off)
            assert not badge.is_visible()
            assert "automatic sizing is off: the size stays at 3" in page.inner_text(
                ".rlx-auto-line")
        finally:
            browser.close()
