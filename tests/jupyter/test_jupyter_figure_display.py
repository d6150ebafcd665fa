"""Figures the toolkit returns display as PNG in IPython without ``%matplotlib``."""

from __future__ import annotations

import pytest

pytest.importorskip("IPython")
pytest.importorskip("matplotlib")


@pytest.mark.timeout(60)
def test_a_returned_figure_has_a_png_formatter() -> None:
    from IPython.testing.globalipapp import get_ipython
    from matplotlib.figure import Figure

    from routilux_jupyter._charts import ensure_figure_display

    shell = get_ipython()
    ensure_figure_display()
    formatter = shell.display_formatter.formatters["image/png"]
    # The test shell keeps only text/plain enabled; a kernel enables image/png.
    png = formatter.lookup_by_type(Figure)(Figure(figsize=(2, 1)))
    assert png.startswith(b"\x89PNG")
