"""What a found deadlock does, for the whole process: raise in one thread, or only report.

The wait loop (``_primitive``) reads ``_deadlock_action`` through this module on every
slice, so ``set_deadlock_action`` takes effect for waits already under way.
"""

from __future__ import annotations

from typing import Literal

DeadlockAction = Literal["raise", "report"]
_DEADLOCK_ACTIONS: tuple[str, ...] = ("raise", "report")
_deadlock_action: str = "raise"


def set_deadlock_action(action: DeadlockAction) -> None:
    """Choose what a found deadlock does, for the whole process.

    Args:
        action: "raise" (default): one thread of the cycle raises ``DeadlockError`` and the
            others proceed once it releases its locks. "report": the cycle is recorded as a
            ``deadlock.detected`` trace event (once per cycle) and the threads keep waiting;
            a ``timeout=`` still ends a wait.

    Raises:
        ValueError: ``action`` is not one of the choices.
    """
    global _deadlock_action
    if not isinstance(action, str) or action not in _DEADLOCK_ACTIONS:
        choices = ", ".join(repr(a) for a in _DEADLOCK_ACTIONS)
        raise ValueError(f"deadlock action must be one of {choices}; got {action!r}")
    _deadlock_action = action


def get_deadlock_action() -> DeadlockAction:
    """The action set by ``set_deadlock_action``: "raise" or "report"."""
    return _deadlock_action  # type: ignore[return-value]
