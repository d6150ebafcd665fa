"""ErrorHandler and ErrorStrategy: what happens when a routine's logic or policy raises.

The runtime acts on ``strategy`` and the retry fields (api.md §12); ``handle_error`` is
kept for code that calls it directly and only classifies.
"""

from __future__ import annotations

import logging
import math
from enum import Enum
from typing import Any

from .._validate import check_number

logger = logging.getLogger("routilux")

MAX_RETRY_DELAY_S = 24 * 3600.0  # seconds: the longest wait before one re-run


class ErrorStrategy(str, Enum):
    """What to do with a job whose routine raised."""

    STOP = "stop"
    CONTINUE = "continue"
    RETRY = "retry"
    SKIP = "skip"

    def __str__(self) -> str:
        return self.value


_STRATEGIES = ", ".join(s.value for s in ErrorStrategy)


class ErrorHandler:
    """A routine's (or flow's) error strategy.

    Args:
        strategy: one of ``stop``, ``continue``, ``retry``, ``skip`` (str or enum).
        max_retries: re-runs allowed per activation under RETRY (>= 0).
        retry_delay: seconds before the first re-run (>= 0).
        retry_backoff: multiplier for each later re-run (>= 1.0).
        retryable_exceptions: exception types that RETRY re-runs; ``None`` = all.
        is_critical: recorded only.
    """

    def __init__(
        self,
        strategy: ErrorStrategy | str = "stop",
        max_retries: int = 3,
        retry_delay: float = 1.0,
        retry_backoff: float = 2.0,
        retryable_exceptions: tuple[type[BaseException], ...] | None = None,
        is_critical: bool = False,
    ) -> None:
        if isinstance(strategy, ErrorStrategy):
            self.strategy = strategy
        elif isinstance(strategy, str):
            try:
                self.strategy = ErrorStrategy(strategy.lower())
            except ValueError:
                raise ValueError(
                    f"unknown error strategy {strategy!r}; valid: {_STRATEGIES}"
                ) from None
        else:
            raise TypeError(
                f"strategy must be an ErrorStrategy or str, got {type(strategy).__name__}"
            )
        if not isinstance(max_retries, int) or isinstance(max_retries, bool) or max_retries < 0:
            raise ValueError(f"max_retries must be an int >= 0, got {max_retries!r}")
        # api.md §12 says ValueError for a bad number; a non-number is one too here (compat).
        try:
            retry_delay = check_number("retry_delay", retry_delay, minimum=0.0, unit=" seconds")
            retry_backoff = check_number("retry_backoff", retry_backoff, minimum=1.0)
        except TypeError as exc:
            raise ValueError(str(exc)) from None
        if retryable_exceptions is None:
            retryable_exceptions = (Exception,)
        elif isinstance(retryable_exceptions, type):
            retryable_exceptions = (retryable_exceptions,)
        else:
            retryable_exceptions = tuple(retryable_exceptions)
        for exc_type in retryable_exceptions:
            if not (isinstance(exc_type, type) and issubclass(exc_type, BaseException)):
                raise TypeError(
                    f"retryable_exceptions must hold exception types, got {exc_type!r}"
                )
        self.max_retries = max_retries
        self.retry_delay = float(retry_delay)
        self.retry_backoff = float(retry_backoff)
        self.retryable_exceptions = retryable_exceptions
        self.is_critical = bool(is_critical)
        self.retry_count = 0

    def reset(self) -> None:
        self.retry_count = 0

    def is_retryable(self, error: BaseException) -> bool:
        return isinstance(error, self.retryable_exceptions)

    def delay_for(self, attempt: int) -> float:
        """Seconds to wait before re-run number ``attempt`` (1-based)."""
        try:
            delay = self.retry_delay * self.retry_backoff ** (attempt - 1)
        except (OverflowError, TypeError):
            return MAX_RETRY_DELAY_S
        # Finite by construction, but a huge backoff reaches inf (and the fields are
        # plain attributes): never hand the monitor a non-finite time.
        if math.isnan(delay) or delay < 0:
            return 0.0
        return min(delay, MAX_RETRY_DELAY_S)

    def handle_error(
        self,
        error: BaseException,
        routine: Any,
        routine_id: str,
        flow: Any,
        worker_state: Any = None,
        context: Any = None,
    ) -> bool:
        """Classify ``error``: True if the job may go on (CONTINUE, SKIP, retry left)."""
        logger.warning("routine %r raised %s: %s", routine_id, type(error).__name__, error)
        if self.strategy in (ErrorStrategy.CONTINUE, ErrorStrategy.SKIP):
            return True
        if self.strategy == ErrorStrategy.RETRY:
            return self.is_retryable(error) and self.retry_count < self.max_retries
        return False

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy.value,
            "max_retries": self.max_retries,
            "retry_delay": self.retry_delay,
            "retry_backoff": self.retry_backoff,
            "is_critical": self.is_critical,
        }

    def __repr__(self) -> str:
        return f"<ErrorHandler strategy={self.strategy.value} max_retries={self.max_retries}>"
