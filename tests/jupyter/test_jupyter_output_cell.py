"""Issue 14, item 3: in a real ipykernel, print() in logic shows under the posting cell.

ipykernel 7 files a thread's output under the parent header of that thread's context,
which on a pool thread falls back to whichever cell runs at the time. Here the logic
prints only once a *later* cell releases it (a ``threading.Event``, so the order is
forced, not timed): the stream message must still name the cell that posted the job.
The messages are read straight from the kernel's iopub channel, because nbclient drops
output whose parent is not the cell it is running.
"""

from __future__ import annotations

from typing import Any

import pytest

jupyter_client = pytest.importorskip("jupyter_client")
pytest.importorskip("ipykernel")

pytestmark = [pytest.mark.slow, pytest.mark.allow_thread_leak]  # jupyter_client's threads

SETUP = """\
%load_ext routilux_jupyter
import sys, threading
from routilux import Flow, Routine, Runtime, get_job_output
from routilux.activation_policies import immediate_policy

go = threading.Event()

def late(slot_data, policy_message, worker_state):
    assert go.wait(30)
    print("LATE from the job")

r = Routine()
r.add_slot("in")
r.set_logic(late)
r.set_activation_policy(immediate_policy())
flow = Flow()
flow.add_routine(r, "late")
runtime = Runtime(thread_pool_size=2)
"""

POST = """\
_, job = runtime.post(flow, "late", "in", {})
print("posted")
"""

RELEASE = """\
go.set()
assert job.wait(30)
sys.stdout.flush()
print("BUFFER", repr(get_job_output(job.job_id, incremental=False)))
runtime.shutdown()
"""

TIMEOUT_S = 60


def run(kc: Any, code: str) -> tuple[str, list[tuple[str, str]]]:
    """Execute ``code``; return its msg_id and every stream text seen until it is idle,
    each with the msg_id of the request its parent header names."""
    msg_id = kc.execute(code)
    streams: list[tuple[str, str]] = []
    while True:
        msg = kc.get_iopub_msg(timeout=TIMEOUT_S)
        parent = msg["parent_header"].get("msg_id")
        if msg["msg_type"] == "stream":
            streams.append((msg["content"]["text"], parent))
        if msg["msg_type"] == "error":
            raise AssertionError("\n".join(msg["content"]["traceback"]))
        if (msg["msg_type"] == "status" and parent == msg_id
                and msg["content"]["execution_state"] == "idle"):
            return msg_id, streams


@pytest.mark.timeout(180)
def test_print_from_logic_lands_under_the_cell_that_posted_the_job() -> None:
    km, kc = jupyter_client.manager.start_new_kernel(
        kernel_name="python3", extra_arguments=[], startup_timeout=TIMEOUT_S)
    try:
        run(kc, SETUP)
        post_id, during_post = run(kc, POST)
        release_id, during_release = run(kc, RELEASE)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    seen = during_post + during_release
    late = [(text, parent) for text, parent in seen if text.startswith("LATE from the job")]
    assert late, f"the job's print never reached iopub: {seen!r}"
    assert all(parent == post_id for _, parent in late), (post_id, release_id, late)
    buffered = [text for text, _ in seen if text.startswith("BUFFER")]
    assert buffered == ["BUFFER 'LATE from the job\\n'\n"]
