"""The widget side: the minimum versions of the widget packages, and the live view class.

``require`` imports ipywidgets/anywidget or raises an ImportError naming the package and its
minimum version; ``live_view_class`` builds (once) the ``anywidget.AnyWidget`` subclass
whose ``_esm`` (``_widget.js``) draws the live view on a ``<canvas>`` in the browser, its
state arriving as ``_delta`` messages (the format: ``_dashboard``'s module docstring).
"""

from __future__ import annotations

import importlib
import itertools
from importlib import resources
from typing import Any

__all__ = ["REQUIREMENTS", "live_view_class", "require"]

REQUIREMENTS = {"ipywidgets": "8.1", "anywidget": "0.9"}  # minimum versions (pyproject)

_live_view_class: Any = None


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("."):
        digits = "".join(itertools.takewhile(str.isdigit, piece))
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def require(module: str) -> Any:
    """Import a widget dependency, or raise ImportError naming it and its minimum version."""
    minimum = REQUIREMENTS[module]
    hint = (
        f"install it with: pip install '{module}>={minimum}' (or pip install 'routilux[jupyter]')"
    )
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"the routilux dashboard needs {module}>={minimum}, which is not installed; {hint}"
        ) from exc
    if mod is None:  # a test (or a user) blocked it in sys.modules
        raise ImportError(
            f"the routilux dashboard needs {module}>={minimum}, which is not installed; {hint}"
        )
    version = getattr(mod, "__version__", "0")
    if _version_tuple(version) < _version_tuple(minimum):
        raise ImportError(
            f"the routilux dashboard needs {module}>={minimum}, but {module} {version} is "
            f"installed; {hint}"
        )
    return mod


def _read_asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def live_view_class() -> Any:
    """The ``anywidget.AnyWidget`` subclass that draws the live view (built on first use)."""
    global _live_view_class
    if _live_view_class is None:
        require("ipywidgets")
        anywidget = require("anywidget")
        import traitlets

        class LiveView(anywidget.AnyWidget):  # type: ignore[misc, name-defined]
            """Canvas view of a Dashboard; state arrives as ``_delta`` messages."""

            _esm = _read_asset("_widget.js")
            _css = _read_asset("_widget.css")
            _delta = traitlets.Dict().tag(sync=True)

        LiveView.__module__ = __name__
        _live_view_class = LiveView
    return _live_view_class
