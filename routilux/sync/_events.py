"""Recording a lock's trace events, with the activation, thread and call site they name.

Events go to the primitive's own ``tracer=``, else to the tracer of the current runtime
(``routilux._context.current_tracer``); with neither, nothing is recorded. A tracer that
raises is logged and ignored: locking must not break because tracing did.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import TYPE_CHECKING, Any, NamedTuple

from .._model import _context

if TYPE_CHECKING:
    from ..trace import Tracer

_get_ident = threading.get_ident
# The one link of this package to the activation context: the other modules take the
# current tracer from here, so a move of ``_context`` changes one import line.
_current_tracer = _context.current_tracer
_logger = logging.getLogger("routilux")

# Frames in these places are not the user's call site: every file of this package (a
# lock's own code) and ``threading`` (Condition calls a lock's methods for its user).
_THIS_PACKAGE = os.path.normcase(os.path.dirname(os.path.abspath(__file__)))
_THREADING_FILE = os.path.normcase(os.path.abspath(threading.__file__))


class _Where(NamedTuple):
    routine: str | None
    job_id: str | None
    worker_id: str | None


_NOWHERE = _Where(None, None, None)


class _Hold(NamedTuple):
    """A contended acquire whose release is traced too."""

    tracer: Tracer | None
    where: _Where
    since: float  # monotonic seconds


def _where() -> _Where:
    """The routine, job and worker of the activation running on this thread, if any."""
    act = _context.current_activation()
    if act is None:
        return _NOWHERE
    job_id = act.job.job_id if act.job is not None else None
    worker_id = getattr(act.worker_state, "worker_id", None)
    return _Where(act.routine_id, job_id, worker_id)


def _record(
    tracer: Tracer | None,
    kind: str,
    name: str,
    where: _Where,
    value: float | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    if tracer is None:
        return
    try:
        tracer.record(
            kind,
            job_id=where.job_id,
            routine=where.routine,
            name=name,
            value=value,
            detail=detail,
            worker_id=where.worker_id,
        )
    except Exception:
        # A broken tracer must not break locking (the lock state is already consistent).
        _logger.exception("tracer failed to record %s for lock %r", kind, name)


def _thread_name(ident: int | None) -> str | None:
    if ident is None:
        return None
    if ident == _get_ident():
        return threading.current_thread().name
    for thread in threading.enumerate():
        if thread.ident == ident:
            return thread.name
    return f"thread {ident} (exited)"


def _site() -> str | None:
    """file:line of the nearest caller outside this package and ``threading``."""
    frame = sys._getframe(1)
    while frame is not None:
        path = os.path.normcase(frame.f_code.co_filename)
        if os.path.dirname(path) != _THIS_PACKAGE and path != _THREADING_FILE:
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back  # type: ignore[assignment]
    return None
