"""One check for every duration, delay and factor routilux takes: a finite real number.

Why one helper: ``nan`` passes every ``x < 0`` test (all comparisons with NaN are false),
so a check written as ``if value < 0: raise`` accepts it, and a NaN delay then poisons
whatever orders by time (one NaN in the monitor's timer heap froze every timer of a
runtime, issue 13). ``inf`` is refused too unless the caller says it means "no limit".
"""

from __future__ import annotations

import math
from typing import Any


def check_number(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    above: float | None = None,
    allow_none: bool = False,
    allow_inf: bool = False,
    unit: str = "",
) -> float | None:
    """``value`` as a float, or raise naming ``name``, the value and the valid range.

    Args:
        name: the parameter as the caller knows it (``"retry_delay"``).
        minimum: the smallest value allowed (inclusive).
        above: a value the number must exceed (exclusive).
        allow_none: ``None`` is returned as is (a default or "no limit").
        allow_inf: ``float("inf")`` is allowed (it must still satisfy the bounds).
        unit: appended to the range in messages (``" seconds"``).

    Raises:
        TypeError: not a real number (``bool`` and strings included).
        ValueError: NaN, infinite (unless allowed), or out of range.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kinds = "a number or None" if allow_none else "a number"
        raise TypeError(f"{name} must be {kinds}{unit and f' ({unit.strip()})'}, got {value!r}")
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        number = math.inf if value > 0 else -math.inf
    unit = f" ({unit.strip()})" if unit else ""
    bound = ""
    if minimum is not None:
        bound = f" >= {float(minimum)!r}"
    if above is not None:
        bound += f"{' and' if bound else ''} > {float(above)!r}"
    if math.isnan(number):
        raise ValueError(f"{name} must be a finite number{bound}{unit}, got nan")
    if math.isinf(number) and not allow_inf:
        raise ValueError(f"{name} must be a finite number{bound}{unit}, got {value!r}")
    if (minimum is not None and number < minimum) or (above is not None and number <= above):
        raise ValueError(f"{name} must be a number{bound}{unit}, got {value!r}")
    return number
