"""The exceptions routilux raises on purpose; each says when and what to do instead."""

from __future__ import annotations


class RoutiluxError(Exception):
    """Base class of the errors routilux raises for you to catch."""


class SlotQueueFullError(RoutiluxError):
    """A slot already holds ``max_queue_length`` unconsumed items; the item was not stored.

    Raised by ``Runtime.post`` (no job is registered) and by ``emit`` after every target
    was tried. Consume faster, raise ``max_queue_length``, or give the routine a policy.
    """


class QueueFullError(RoutiluxError):
    """``post`` found the run queue at ``max_queue_size`` and could not wait for room.

    Raised at once with ``block=False``, or after ``timeout`` seconds with ``block=True``.
    No job was registered, so posting again later is safe.
    """


class WorkerNotRunningError(RoutiluxError, RuntimeError):
    """The worker addressed by ``worker_id`` no longer accepts work (completed or cancelled)."""


class RuntimeShutDown(RoutiluxError, RuntimeError):
    """The runtime was shut down: it takes no more posts, execs or resizes.

    Raised by ``post``, ``exec`` and ``resize`` after ``shutdown()`` (or after leaving
    ``with Runtime(...)``), and by a ``post`` that was waiting for room in the run queue
    when the runtime shut down (its job was never registered). Still a ``RuntimeError``,
    as before it had its own class. Make a new ``Runtime`` to run more work.
    """


class SharedStateError(RoutiluxError, RuntimeError):
    """A routine's logic assigned an instance attribute while ``Runtime(strict=True)``.

    Logic may run concurrently on one routine object, so instance attributes are shared
    by every job. Keep per-job values in the JobContext (``get_current_job().set_data``)
    and worker-level counters in ``worker_state.modify_routine_state``.
    """


class RoutiluxInternalError(RoutiluxError):
    """A state that cannot happen happened: this is a bug in routilux; please report it."""


class DeadlockError(RoutiluxError):
    """Threads wait for each other's traced locks in a cycle, so none of them can go on.

    Raised from ``acquire`` in exactly one thread of the cycle (the one that found it),
    when ``routilux.sync.set_deadlock_action("raise")`` is in force (the default). That
    thread no longer waits; once it releases the locks it holds, the others proceed.
    Fix the cause by taking locks in one agreed order everywhere, or pass ``timeout=``.

    Attributes:
        cycle: one dict per thread of the cycle, in wait order: ``thread`` (ident),
            ``thread_name``, ``routine``, ``job_id``, ``holds`` (the lock the previous
            thread waits for) and ``waits_for`` (lock names).
        locks: the lock names the threads wait for, in cycle order.
        threads: the thread names, in cycle order.
    """

    def __init__(self, message: str, cycle: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.cycle: list[dict[str, object]] = list(cycle or [])
        self.locks: list[str] = [str(step["waits_for"]) for step in self.cycle]
        self.threads: list[str] = [str(step["thread_name"]) for step in self.cycle]

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (str(self), self.cycle))


def error_text(exc: BaseException) -> str:
    """``"<ExcType>: <message>"`` for a job's ``error``, whatever the exception object does.

    User exceptions may be broken: ``__str__`` that raises, or returns a non-str, or
    recurses. The text must still come out, or the failure path itself raises and the
    job would end "completed" although its logic failed (issue 13).
    """
    try:
        name = type(exc).__name__
        if not isinstance(name, str):
            name = object.__repr__(exc)
    except BaseException:  # noqa: BLE001 - a broken exception class
        name = "Exception"
    try:
        message = str(exc)
    except BaseException as inner:  # noqa: BLE001 - any failure of user code counts
        try:
            why = type(inner).__name__
        except BaseException:  # noqa: BLE001
            why = "error"
        message = f"<exception str() failed: {why}>"
    if not isinstance(message, str):  # a str subclass whose __str__ misbehaves
        message = "<exception str() returned a non-string>"
    return f"{name}: {message}"
