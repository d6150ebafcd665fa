"""Trace events: the bounded buffer that records them, their files and the readings of them.

Being split into modules (issue 15); for now everything lives in ``_tracer``.
"""

from ._tracer import *  # noqa: F403
from ._tracer import (  # noqa: F401
    LANE_EXECUTOR,
    LANE_POOL,
    LANE_REMOTE,
    LOOP_THREAD_NAME,
    MAX_LOAD_CAPACITY,
    MAX_LOAD_NESTING,
    __all__,
    _lane_of,
    _source_events,
    _task_spans,
)
