"""RoutedStdout: ``print()`` inside a routine's logic, kept per job.

``install_routed_stdout()`` replaces ``sys.stdout`` with a ``RoutedStdout`` that looks at
the current job (``get_current_job()``, a ContextVar read) on every write:

- inside logic, the text goes to that job's buffer (``get_job_output(job_id)``) and, with
  ``keep_default`` (the default), on to the stream it replaced;
- anywhere else (no job), it goes straight to that stream (dropped without
  ``keep_default``).

Per-job buffers keep text intact however many pool threads print at once, which is how a
program shows concurrent output cleanly: print each job's output after the wait.

Notebooks: logic runs on pool threads, and ipykernel 7 sends a thread's output to the
cell its parent header names (a ContextVar of its stream), which on a pool thread is
whichever cell happens to run. When the stream it forwards to has ipykernel's
``parent_header`` / ``set_thread_parent``, a RoutedStdout therefore notes the posting
thread's parent when a job is posted (the runtime calls ``note_origin``) and writes that
job's text under it: output appears under the cell that posted the job.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict, deque
from typing import Any, TextIO

from ._context import _activation

MAX_BUFFER_CHARS = 200_000  # characters of history kept per job (the tail)
MAX_JOBS = 10_000  # jobs with output kept; the oldest are forgotten first


class RoutedStdout:
    """A ``sys.stdout`` that routes text by the job whose logic writes it.

    Args:
        real_stdout: where text goes when no job is bound (and, with ``keep_default``,
            a copy of job text); default ``sys.stdout`` (what it replaces).
        keep_default: forward text to ``real_stdout`` (True), or keep job text only in
            its buffer and drop text written outside any job (False).
        max_buffer_chars: characters of history kept per job (older text is trimmed).
    """

    def __init__(self, real_stdout: TextIO | None = None, keep_default: bool = True,
                 max_buffer_chars: int = MAX_BUFFER_CHARS) -> None:
        if real_stdout is None:
            real_stdout = sys.stdout
            while isinstance(real_stdout, RoutedStdout):
                real_stdout = real_stdout.real
        if isinstance(max_buffer_chars, bool) or not isinstance(max_buffer_chars, int) \
                or max_buffer_chars < 1:
            raise ValueError(f"max_buffer_chars must be an int >= 1, got {max_buffer_chars!r}")
        self.real: Any = real_stdout
        self.keep_default = bool(keep_default)
        self.max_buffer_chars = max_buffer_chars
        self._lock = threading.RLock()
        self._queues: OrderedDict[str, deque[str]] = OrderedDict()
        self._buffers: dict[str, str] = {}
        self._origins: dict[str, Any] = {}  # job_id -> the poster's ipykernel parent header
        # ipykernel's OutStream: a per-thread parent header says which cell output belongs to
        self._parents = callable(getattr(real_stdout, "set_thread_parent", None)) and \
            hasattr(real_stdout, "parent_header")

    # -- the stream ---------------------------------------------------------------------
    def write(self, s: str) -> int:
        if not s:
            return 0
        act = _activation.get()
        job = act.job if act is not None else None
        if job is None:
            if self.keep_default:
                self.real.write(s)
            return len(s)
        job_id = job.job_id
        with self._lock:
            q = self._queues.get(job_id)
            if q is None:
                q = self._queues[job_id] = deque()
                if len(self._queues) > MAX_JOBS:
                    old, _ = self._queues.popitem(last=False)
                    self._buffers.pop(old, None)
                    self._origins.pop(old, None)
            q.append(s)
            buf = self._buffers.get(job_id, "") + s
            if len(buf) > self.max_buffer_chars:
                buf = buf[-self.max_buffer_chars:]
            self._buffers[job_id] = buf
            origin = self._origins.get(job_id)
        if self.keep_default:
            if origin is not None:
                token = self.real.set_thread_parent(origin)
                try:
                    self.real.write(s)
                finally:
                    self.real.reset_thread_parent(token)
            else:
                self.real.write(s)
        return len(s)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self.keep_default:
            self.real.flush()

    @property
    def encoding(self) -> str:
        return getattr(self.real, "encoding", "utf-8")

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.real.fileno()

    def __getattr__(self, name: str) -> Any:
        # Anything else a stream offers (errors, buffer, ipykernel's session...) is the real one's.
        return getattr(self.__dict__["real"], name)

    # -- per job ------------------------------------------------------------------------
    def note_origin(self, job: Any) -> None:
        """Called by the runtime in the posting thread: remember where that cell's output goes."""
        if not self._parents:
            return
        act = _activation.get()
        if act is not None and act.job is not None:
            # posted from inside logic: the new job belongs where its poster's job does
            with self._lock:
                parent = self._origins.get(act.job.job_id)
                if parent is not None:
                    self._origins[job.job_id] = parent
                    return
        try:
            parent = self.real.parent_header
        except Exception:  # noqa: BLE001 - a stream that only looks like ipykernel's
            return
        if parent:
            with self._lock:
                self._origins[job.job_id] = parent
                while len(self._origins) > MAX_JOBS:
                    self._origins.pop(next(iter(self._origins)))

    def pop_chunks(self, job_id: str) -> list[str]:
        """The job's text written since the last pop, as written (consumed)."""
        with self._lock:
            q = self._queues.get(job_id)
            if not q:
                return []
            chunks = list(q)
            q.clear()
            return chunks

    def get_buffer(self, job_id: str) -> str:
        """All of the job's text (its last ``max_buffer_chars``), not consumed."""
        with self._lock:
            return self._buffers.get(job_id, "")

    def clear_job(self, job_id: str) -> None:
        """Forget a job's text (free its memory)."""
        with self._lock:
            self._queues.pop(job_id, None)
            self._buffers.pop(job_id, None)
            self._origins.pop(job_id, None)

    def list_jobs(self) -> list[str]:
        with self._lock:
            return list(self._queues)

    def get_stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "job_count": len(self._queues),
                "total_queue_items": sum(len(q) for q in self._queues.values()),
                "total_buffer_chars": sum(len(b) for b in self._buffers.values()),
            }


# The installed instance (read by the runtime at each post: one global test), and the
# stream it replaced.
routed: RoutedStdout | None = None
_replaced: Any = None
_install_lock = threading.Lock()


def install_routed_stdout(keep_default: bool = True,
                          max_buffer_chars: int = MAX_BUFFER_CHARS) -> RoutedStdout:
    """Replace ``sys.stdout`` with a RoutedStdout; returns it.

    Idempotent while it is in place. If something swapped ``sys.stdout`` since (a test
    runner's capture, IPython's ``capture_output``), a new one wraps the current stream.
    """
    global routed, _replaced
    with _install_lock:
        if routed is not None and sys.stdout is routed:
            return routed
        if isinstance(sys.stdout, RoutedStdout):  # installed by hand: adopt it
            routed = sys.stdout
            return routed
        _replaced = sys.stdout
        routed = RoutedStdout(_replaced, keep_default, max_buffer_chars)
        sys.stdout = routed
        return routed


def uninstall_routed_stdout() -> None:
    """Put back the stream ``install_routed_stdout`` replaced (if it is still in place)."""
    global routed, _replaced
    with _install_lock:
        if routed is None:
            return
        if sys.stdout is routed:
            sys.stdout = _replaced
        routed, _replaced = None, None


def get_routed_stdout() -> RoutedStdout | None:
    return routed


def get_job_output(job_id: str, incremental: bool = True) -> str:
    """A job's printed text: new since the last call (``incremental``) or all of it.

    Empty when no RoutedStdout is installed.
    """
    r = routed
    if r is None:
        return ""
    return "".join(r.pop_chunks(job_id)) if incremental else r.get_buffer(job_id)


def clear_job_output(job_id: str) -> None:
    r = routed
    if r is not None:
        r.clear_job(job_id)
