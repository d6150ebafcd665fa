"""Helpers the tuning tools share: percentiles, and the optional pandas they need."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def _require_pandas(what: str) -> Any:
    """pandas, or an ImportError naming the tool that needs it and the extra to install."""
    try:
        import pandas as pd  # deferred: pandas (optional, heavy) only for the tools that need it
    except ImportError as exc:
        raise ImportError(
            f"routilux.tuning.{what} needs pandas, which is not installed; "
            "install it with: pip install routilux[jupyter]"
        ) from exc
    return pd


def _percentile(sorted_xs: Sequence[float], p: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default), p in [0, 100]."""
    if not sorted_xs:
        return None
    pos = (len(sorted_xs) - 1) * p / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_xs) - 1)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (pos - lo)
