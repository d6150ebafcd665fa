"""The dashboard readable without a kernel (#12): one output, its picture kept current.

Displayed, a dashboard publishes one output under its own ``display_id`` whose bundle
carries, beside the widget view, a PNG of ``snapshot()`` and a plain-text line. Calls from
the kernel's main thread (a cell: ``refresh()``, ``snapshot()``, ``stop()``, ``close()``)
renew that output, so a saved or rendered notebook (nbconvert, GitHub, nbviewer) shows the
latest picture; ``close()`` leaves the picture only, as the live view is gone. The pump
never renders it (the kernel would pay for a matplotlib frame ten times a second), and an
update from another thread would belong to no cell.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from routilux import Runtime

__all__ = ["PictureOutput", "html_escape", "one_line", "runtime_label"]

logger = logging.getLogger("routilux_jupyter")


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def runtime_label(runtime: Runtime) -> str:
    """How the title names a runtime: its notebook variable, else the flows it runs."""
    name = None
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        shell = None
    if shell is not None:
        names = sorted(k for k, v in list(shell.user_ns.items())
                       if v is runtime and not k.startswith("_"))
        name = names[0] if names else None
    flows: list[str] = []
    for job in runtime.list_jobs():
        if job.flow_id not in flows:
            flows.append(job.flow_id)
            if len(flows) > 3:
                break
    shown = ", ".join(flows[:3]) + (", ..." if len(flows) > 3 else "")
    if name is not None:
        return f"{name} (flows {shown})" if flows else name
    return f"Runtime running {shown}" if flows else "Runtime (no flow posted yet)"


class PictureOutput:
    """The published output of one dashboard: widget view + text line + PNG.

    Args:
        display_id: The output's id (unique per dashboard).
        text: What the dashboard watches, for the text line.
        widget: The ipywidgets layout (its bundle is the live view).
        figure: Builds the current ``snapshot()`` figure.
    """

    def __init__(self, display_id: str, text: str, widget: Any,
                 figure: Callable[[], Figure]) -> None:
        self.display_id = display_id
        self.text = text
        self.widget = widget
        self.figure = figure
        self.displayed = False  # published under display_id: keep that output's picture

    def bundle(self, live: bool, fig: Figure | None = None) -> dict[str, Any]:
        """The widget view (when live), a plain-text line and a PNG of the latest state."""
        data: dict[str, Any] = {}
        if live:
            data.update(self.widget._repr_mimebundle_())
        state = "live in Jupyter with ipywidgets" if live else "closed; its last picture"
        data["text/plain"] = (
            f"routilux dashboard ({self.text}); {state}; "
            f"dashboard.snapshot() gives a static figure"
        )
        try:
            picture = self.png(fig)
        except Exception as exc:  # noqa: BLE001 - a repr: IPython would hide it, so log it
            logger.exception("routilux_jupyter: could not draw the dashboard's picture")
            data["text/plain"] += f" (no picture: {type(exc).__name__}: {one_line(exc)})"
        else:
            data["image/png"] = picture
        return data

    def png(self, fig: Figure | None = None) -> str:
        """The figure (default: a new snapshot) as base64 PNG text, as a bundle holds it."""
        from ._charts import figure_png

        return base64.b64encode(figure_png(fig if fig is not None else self.figure())
                                ).decode("ascii")

    def publish(self, live: bool) -> None:
        """Display the bundle under ``display_id`` (``_ipython_display_``)."""
        from IPython.display import display

        display(self.bundle(live=live), raw=True, display_id=self.display_id)
        self.displayed = True

    def update(self, live: bool, fig: Figure | None = None) -> None:
        """Renew the published output's picture (only from a cell: the main thread)."""
        if not self.displayed or threading.current_thread() is not threading.main_thread():
            return
        try:
            from IPython.display import update_display

            update_display(self.bundle(live=live, fig=fig), raw=True,
                           display_id=self.display_id)
        except Exception:
            logger.exception("routilux_jupyter: could not update the dashboard's output")
