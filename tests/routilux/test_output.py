"""Issue 14, item 2: RoutedStdout keeps ``print()`` in logic per job.

Written in the style of upstream's tests/test_core_output.py (names and behaviour), plus
what upstream does not test: concurrent jobs printing at once stay apart, and text goes on
to the real stream when ``keep_default``.
"""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Iterator

import pytest
from util import JOIN_TIMEOUT, make_routine, new_flow, running

from routilux.core import (
    JobContext,
    RoutedStdout,
    clear_job_output,
    get_job_output,
    install_routed_stdout,
    set_current_job,
    uninstall_routed_stdout,
)


@pytest.fixture
def clean_stdout() -> Iterator[None]:
    original = sys.stdout
    uninstall_routed_stdout()
    try:
        yield
    finally:
        uninstall_routed_stdout()
        sys.stdout = original


def test_text_written_under_a_job_goes_to_its_buffer() -> None:
    real = io.StringIO()
    out = RoutedStdout(real, keep_default=False)
    set_current_job(JobContext(job_id="job-1"))
    try:
        out.write("one\n")
    finally:
        set_current_job(None)
    set_current_job(JobContext(job_id="job-2"))
    try:
        out.write("two\n")
    finally:
        set_current_job(None)
    out.write("no job\n")
    assert out.get_buffer("job-1") == "one\n" and out.get_buffer("job-2") == "two\n"
    assert real.getvalue() == ""  # keep_default=False: nothing forwarded, unbound dropped
    assert out.pop_chunks("job-1") == ["one\n"] and out.pop_chunks("job-1") == []
    assert out.get_buffer("job-1") == "one\n"  # history stays
    assert sorted(out.list_jobs()) == ["job-1", "job-2"]
    assert out.get_stats()["total_buffer_chars"] == 8
    out.clear_job("job-1")
    assert out.get_buffer("job-1") == "" and out.list_jobs() == ["job-2"]


def test_keep_default_forwards_job_text_and_unbound_text() -> None:
    real = io.StringIO()
    out = RoutedStdout(real)
    assert out.keep_default is True and out.real is real
    out.write("outside\n")
    set_current_job(JobContext(job_id="j"))
    try:
        out.write("inside\n")
    finally:
        set_current_job(None)
    assert real.getvalue() == "outside\ninside\n"
    assert out.get_buffer("j") == "inside\n"


def test_buffers_keep_their_tail() -> None:
    out = RoutedStdout(io.StringIO(), keep_default=False, max_buffer_chars=5)
    set_current_job(JobContext(job_id="j"))
    try:
        out.write("abc")
        out.write("defg")
    finally:
        set_current_job(None)
    assert out.get_buffer("j") == "cdefg"
    with pytest.raises(ValueError, match="max_buffer_chars must be an int >= 1"):
        RoutedStdout(io.StringIO(), max_buffer_chars=0)


def test_install_get_clear_uninstall(clean_stdout: None) -> None:
    before = sys.stdout
    routed = install_routed_stdout()
    assert isinstance(sys.stdout, RoutedStdout) and install_routed_stdout() is routed
    set_current_job(JobContext(job_id="job-x"))
    try:
        print("hello", flush=True)
    finally:
        set_current_job(None)
    assert get_job_output("job-x", incremental=False) == "hello\n"
    assert get_job_output("job-x") == "hello\n"  # incremental: consumed
    assert get_job_output("job-x") == ""
    clear_job_output("job-x")
    assert get_job_output("job-x", incremental=False) == ""
    uninstall_routed_stdout()
    assert sys.stdout is before
    assert get_job_output("job-x") == ""  # nothing installed: empty


def test_concurrent_jobs_printing_at_once_stay_apart(clean_stdout: None) -> None:
    """Four pool threads print interleaved lines at the same moment; each job's buffer
    holds exactly its own lines, whole and in order."""
    real = io.StringIO()
    sys.stdout = real
    install_routed_stdout(keep_default=False)
    n = 4
    barrier = threading.Barrier(n, timeout=JOIN_TIMEOUT)

    def chatty(slot_data, policy_message, worker_state):
        k = slot_data["in"][0]["k"]
        barrier.wait()
        for i in range(50):
            print(f"job {k} line {i}")

    flow = new_flow("print")
    flow.add_routine(make_routine(chatty), "p")
    with running(thread_pool_size=n) as rt:
        jobs = [rt.post(flow.flow_id, "p", "in", {"k": k})[1] for k in range(n)]
        assert all(j.wait(JOIN_TIMEOUT) for j in jobs)
    for k, job in enumerate(jobs):
        expected = "".join(f"job {k} line {i}\n" for i in range(50))
        assert get_job_output(job.job_id, incremental=False) == expected
    assert real.getvalue() == ""


def test_text_printed_outside_jobs_reaches_the_real_stream(clean_stdout: None) -> None:
    real = io.StringIO()
    sys.stdout = real
    install_routed_stdout()
    print("from the main thread")
    assert real.getvalue() == "from the main thread\n"


def test_install_again_after_stdout_was_swapped_wraps_the_new_stream(clean_stdout: None) -> None:
    first = install_routed_stdout()
    assert install_routed_stdout() is first  # idempotent while in place
    swapped = io.StringIO()
    sys.stdout = swapped  # e.g. a test runner's capture, or IPython's capture_output
    second = install_routed_stdout()
    assert second is not first and sys.stdout is second and second.real is swapped
    print("to the new stream")
    assert swapped.getvalue() == "to the new stream\n"
    uninstall_routed_stdout()
    assert sys.stdout is swapped
