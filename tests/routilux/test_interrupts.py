"""Ctrl-C (SIGINT) against a running runtime: subprocess tests (issues 13 and 14).

Each test runs a small script in a child process, sends it real SIGINTs at the moment
the script reports (a line on stdout), and reads a JSON summary the child prints at the
end. The child is always killed in ``finally``; every wait is bounded.

- A signal storm while a loop posts: every KeyboardInterrupt reaches the loop (none is
  swallowed by post), every job ends terminal, a job is "completed" only if its logic
  ran, nothing stays in flight, and the runtime still serves posts (no lost wake-up).
- One Ctrl-C during ``wait_until_all_jobs_finished`` inside ``with Runtime(...)``, or
  while leaving the block: the queued jobs are cancelled (and counted on stderr), the
  running logic finishes, and the process exits well before a drain would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHILD_TIMEOUT = 60.0  # seconds a child may live, whatever happens

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


class Child:
    """A Python child running ``code``; lines on stdout are its progress reports."""

    def __init__(self, code: str, tmp_path: Path) -> None:
        script = tmp_path / "child.py"
        script.write_text(textwrap.dedent(code))
        env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=env, cwd=str(REPO),
        )
        self.deadline = time.monotonic() + CHILD_TIMEOUT

    def expect(self, line: str) -> None:
        assert self.proc.stdout is not None
        got = self.proc.stdout.readline().strip()  # bounded by the test's timeout marker
        assert got == line, f"child said {got!r}, expected {line!r}; stderr: {self.stderr()}"

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        assert self.proc.stderr is not None
        return self.proc.stderr.read()

    def finish(self) -> tuple[dict, str, float]:
        """Wait for the exit; (summary, stderr, seconds it took after this call)."""
        t0 = time.monotonic()
        out, err = self.proc.communicate(timeout=max(self.deadline - time.monotonic(), 1.0))
        took = time.monotonic() - t0
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        assert lines, f"no summary; exit {self.proc.returncode}; stdout {out!r}; stderr {err}"
        return json.loads(lines[-1]), err, took

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


STORM = """
import json, signal, sys, threading, time
from routilux import Flow, Routine, Runtime, immediate_policy

raised = ignored = 0
# Raise only inside the try below (the loop's own back-edge must not see one), and only
# one at a time: a signal handled while the previous KeyboardInterrupt is still on its
# way to the except clause would replace it and count twice.
armed = False
def on_sigint(signum, frame):
    global raised, ignored, armed
    if not armed:
        ignored += 1
        return
    armed = False
    raised += 1
    raise KeyboardInterrupt

signal.signal(signal.SIGINT, on_sigint)
ran = set()
ran_lock = threading.Lock()

def logic(slot_data, policy_message, worker_state):
    from routilux import get_current_job
    with ran_lock:
        ran.add(get_current_job().job_id)

flow = Flow("storm")
r = Routine()
r.add_slot("in")
r.set_logic(logic)
r.set_activation_policy(immediate_policy())
flow.add_routine(r, "r")
rt = Runtime(thread_pool_size=2)
caught = 0
stop = time.monotonic() + {seconds}
print("posting", flush=True)
while time.monotonic() < stop:
    try:
        armed = True
        rt.post("storm", "r", "in", {{}})
        armed = False
    except KeyboardInterrupt:
        armed = False
        caught += 1
armed = False
signal.signal(signal.SIGINT, signal.SIG_IGN)
print("done", flush=True)
ok = rt.wait_until_all_jobs_finished(30)
idle = rt.wait_until_all_workers_idle(30)
jobs = rt.list_jobs()
bad = [j.job_id for j in jobs if j.status == "completed" and j.job_id not in ran]
_, late = rt.post("storm", "r", "in", {{}})
served = late.wait(30) and late.status == "completed"
stats = rt.statistics()
rt.shutdown(timeout=10)
print(json.dumps({{
    "raised": raised, "caught": caught, "ignored": ignored, "finished": ok, "idle": idle,
    "statuses": {{s: sum(1 for j in jobs if j.status == s) for s in {{j.status for j in jobs}}}},
    "completed_without_logic": len(bad), "in_flight": stats.in_flight,
    "running": stats.running, "served": served, "posted": stats.posted,
    "counts": stats.jobs, "logic_ran": len(ran),
}}))
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("interval_s", [0.0005, 0.003], ids=["storm", "drizzle"])
def test_sigint_storm_while_posting_loses_nothing(tmp_path: Path, interval_s: float) -> None:
    child = Child(STORM.format(seconds=2.0), tmp_path)
    try:
        child.expect("posting")
        sent = 0
        end = time.monotonic() + 1.8
        while time.monotonic() < end and child.proc.poll() is None:
            child.proc.send_signal(signal.SIGINT)
            sent += 1
            time.sleep(interval_s)
        summary, err, _ = child.finish()
    finally:
        child.kill()
    assert child.proc.returncode == 0, err
    assert summary["raised"] > 0, summary
    # Every KeyboardInterrupt reached the loop: post swallowed none.
    assert summary["caught"] == summary["raised"], summary
    assert summary["finished"] and summary["idle"], summary
    assert summary["in_flight"] == 0 and summary["running"] == 0, summary
    assert summary["completed_without_logic"] == 0, summary
    assert set(summary["statuses"]) <= {"completed", "cancelled"}, summary
    assert summary["served"], summary  # no lost wake-up: a later post still runs
    counts = summary["counts"]
    assert counts["running"] == 0 and counts["failed"] == 0, counts
    assert counts["completed"] + counts["cancelled"] == summary["posted"], summary
    assert counts["cancelled"] <= summary["raised"], summary  # only interrupted posts
    assert counts["completed"] <= summary["logic_ran"], summary


INTERRUPTED_WAIT = """
import json, sys, threading, time
from routilux import Flow, Routine, Runtime, immediate_policy

started = threading.Event()
def logic(slot_data, policy_message, worker_state):
    started.set()
    time.sleep({sleep})

flow = Flow("ctrlc")
r = Routine()
r.add_slot("in")
r.set_logic(logic)
r.set_activation_policy(immediate_policy())
flow.add_routine(r, "r")
jobs = []
t0 = time.monotonic()
try:
    with Runtime(thread_pool_size=2) as rt:
        for _ in range({n}):
            jobs.append(rt.post("ctrlc", "r", "in", {{}})[1])
        started.wait(10)
        print("{report}", flush=True)
        {body}
    outcome = "no interrupt"
except KeyboardInterrupt:
    outcome = "KeyboardInterrupt"
print(json.dumps({{
    "outcome": outcome, "statuses": {{s: sum(1 for j in jobs if j.status == s)
                                     for s in {{j.status for j in jobs}}}},
    "shut_down": rt.is_shut_down, "running": rt.statistics().running,
}}))
"""

BODIES = {
    "during the wait": "rt.wait_until_all_jobs_finished()",
    "while leaving the block": "time.sleep(0.05)",  # the signal lands in __exit__'s drain
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("where", list(BODIES))
def test_one_ctrl_c_cancels_the_queue_and_exits_promptly(tmp_path: Path, where: str) -> None:
    """40 jobs of 0.5 s on 2 threads would drain in 10 s; one Ctrl-C ends it in < 3 s."""
    n, sleep = 40, 0.5
    report = "waiting" if where == "during the wait" else "leaving"
    child = Child(INTERRUPTED_WAIT.format(n=n, sleep=sleep, report=report,
                                          body=BODIES[where]), tmp_path)
    try:
        child.expect(report)
        if where == "while leaving the block":
            time.sleep(0.3)  # let the body end: the interrupt arrives in the drain
        t0 = time.monotonic()
        child.proc.send_signal(signal.SIGINT)
        summary, err, _ = child.finish()
        took = time.monotonic() - t0
    finally:
        child.kill()
    assert summary["outcome"] == "KeyboardInterrupt", (summary, err)
    statuses = summary["statuses"]
    assert sum(statuses.values()) == n
    assert set(statuses) <= {"completed", "cancelled"}, statuses  # every job terminal
    assert statuses.get("cancelled", 0) >= n - 8, statuses  # the queue was not drained
    assert summary["shut_down"] and summary["running"] == 0
    assert "routilux: interrupted: cancelled" in err, err  # says how many
    assert f"cancelled {statuses['cancelled']} queued job(s)" in err, err
    # Running logic (<= 0.5 s) finishes; a drain would take ~10 s.
    assert took < 3.0, f"exit took {took:.1f} s after the Ctrl-C"
