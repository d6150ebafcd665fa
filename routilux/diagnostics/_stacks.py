"""Where a sampled stack says a task is: the user's line, the call it waits in, in words.

A ``task.sample`` stack (or one ``diagnose`` takes of a live task) is a list of
``"file:line in func"`` strings, outermost first. The place shown is the innermost frame
outside routilux and the standard library (a third-party client such as ``requests`` counts
as the user's call), with the waiting call on its source line when there is one, e.g.
"time.sleep in fetch() at notebook cell line 4".
"""

from __future__ import annotations

import linecache
import os
import re
import sysconfig
from typing import Any, NamedTuple

__all__ = ["CELL_RE", "locate"]

_FRAME_RE = re.compile(r"^(?P<file>.*):(?P<line>\d+) in (?P<func>.*)$")
CELL_RE = re.compile(r"(ipykernel_\d+[/\\]\d+\.py|<ipython-input-[^>]*>)$")  # a Jupyter cell
_CALL_RE = re.compile(r"([A-Za-z_][\w.]*)\s*\(")
_WAITING_NAMES = frozenset({
    "sleep", "wait", "wait_for", "acquire", "join", "get", "recv", "recv_into", "recvfrom",
    "read", "readline", "readinto", "accept", "connect", "select", "poll", "urlopen",
    "request", "getresponse", "communicate", "result", "run_until_complete",
    "_wait_for_tstate_lock",
})
_ROUTILUX_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # routilux/
_LIB_DIRS = tuple(
    os.path.abspath(p) for p in {sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib")}
    if p
)


class _Frame(NamedTuple):
    file: str
    line: int
    func: str


def _frames(stack: Any) -> list[_Frame]:
    out = []
    if not isinstance(stack, (list, tuple)):
        return out
    for text in stack:
        m = _FRAME_RE.match(str(text))
        if m:
            out.append(_Frame(m["file"], int(m["line"]), m["func"]))
    return out


def _is_library(path: str) -> bool:
    p = os.path.abspath(path)
    if p.startswith(_ROUTILUX_DIR + os.sep):
        return True
    if "site-packages" in p or "dist-packages" in p:
        return False  # a third-party client (requests...) is where the user's call blocks
    return any(p.startswith(d + os.sep) for d in _LIB_DIRS)


def _place(frame: _Frame) -> str:
    if CELL_RE.search(frame.file):
        return f"notebook cell line {frame.line}"
    return f"{os.path.basename(frame.file)}:{frame.line}"


def locate(stack: Any) -> tuple[str | None, bool]:
    """(e.g. "time.sleep in fetch() at notebook cell line 4", whether it is waiting)."""
    frames = _frames(stack)
    if not frames:
        return None, False
    inner = frames[-1]
    user = next((f for f in reversed(frames) if not _is_library(f.file)), inner)
    code = linecache.getline(user.file, user.line).strip()
    calls = _CALL_RE.findall(code)
    call = next((c for c in calls if c.rsplit(".", 1)[-1] in _WAITING_NAMES), None)
    waiting = call is not None or inner.func in _WAITING_NAMES
    what = call or (code if code and len(code) <= 60 else None)
    text = f"{what} in {user.func}() at {_place(user)}" if what \
        else f"{user.func}() at {_place(user)}"
    if inner is not user and call is None:
        text += f", inside {inner.func}() ({os.path.basename(inner.file)}:{inner.line})"
    return text, waiting
