"""Saved traces: JSON lines written by ``Tracer.save`` and read back, checked, by ``Tracer.load``.

The file is a header object (format, version, capacity, dropped, pid, events, fields) and then
one object per event in seq order. Reading validates everything a reader later relies on and
names the path and line of the first problem; its limits keep a hostile or corrupt file a
``ValueError`` (never a ``RecursionError``, ``MemoryError`` or ``OverflowError``).
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._event import _FIELDS

_FORMAT_NAME = "routilux-trace"  # the "format" of a saved trace's header line
_FORMAT_VERSION = 1
# Limits of Tracer.load, so a hostile or corrupt file gives a ValueError, never a
# RecursionError, a MemoryError or an OverflowError (issue 13).
MAX_LOAD_CAPACITY = 10_000_000  # events a loaded tracer may hold (its ring is allocated)
MAX_LOAD_NESTING = 100  # arrays/objects nested inside one event line
_INT64 = 1 << 63  # seq, ts_ns, thread idents and counters must fit in 64 bits


def write_trace(path: str | os.PathLike[str], rows: Sequence[Sequence[Any]], *, capacity: int,
                dropped: int, pid: int) -> None:
    """Write ``rows`` (tuples in ``TraceEvent`` field order) as a saved trace at ``path``."""
    header = {
        "format": _FORMAT_NAME,
        "version": _FORMAT_VERSION,
        "capacity": capacity,
        "dropped": dropped,
        "pid": pid,
        "events": len(rows),
        "fields": list(_FIELDS),
    }
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(header) + "\n")
        fh.writelines(_event_line(row) + "\n" for row in rows)


def read_trace(path: str | os.PathLike[str]) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    """The checked header and event rows of the saved trace at ``path``.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file is not a routilux trace, or an event line is malformed;
            the message names the path and line.
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            header = _read_header(path, fh.readline())
            rows = [
                _parse_event(path, lineno, line)
                for lineno, line in enumerate(fh, start=2)
                if line.strip()
            ]
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not a routilux trace: it is not UTF-8 text") from exc
    _check_sequence(path, rows, header)
    return header, rows


def _event_line(row: Sequence[Any]) -> str:
    event = dict(zip(_FIELDS, row, strict=True))
    try:
        # default=repr turns a nested non-JSON value into its repr, keeping the structure.
        return json.dumps(event, default=repr)
    except (TypeError, ValueError):
        # Keys JSON cannot hold (tuples...) or a circular structure: keep the repr only.
        event["detail"] = repr(event["detail"])
        return json.dumps(event, default=repr)


def _nesting_error(where: str, line: str) -> ValueError | None:
    """A ValueError if ``line`` nests arrays/objects deeper than MAX_LOAD_NESTING.

    Checked before ``json.loads``, which would recurse once per level. Cheap for normal
    lines: only a line with that many brackets at all is scanned (strings skipped).
    """
    if line.count("[") + line.count("{") <= MAX_LOAD_NESTING:
        return None
    depth = deepest = 0
    in_string = escaped = False
    for ch in line:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_LOAD_NESTING:
                    return ValueError(
                        f"{where}: nested more than {MAX_LOAD_NESTING} levels deep; "
                        "Tracer.save never writes that")
        elif ch in "]}":
            depth -= 1
    return None


def _loads(where: str, line: str) -> Any:
    """``json.loads`` with the loader's limits; ValueError naming ``where`` otherwise."""
    nesting = _nesting_error(where, line)
    if nesting is not None:
        raise nesting
    try:
        return json.loads(line)
    except RecursionError:
        raise ValueError(f"{where}: nested too deeply to read") from None


def _read_header(path: Path, line: str) -> dict[str, Any]:
    not_trace = f"{path} is not a routilux trace (a JSON-lines file written by Tracer.save)"
    try:
        header = _loads(f"{path}: line 1", line)
    except ValueError as exc:
        if "line 1:" in str(exc):
            raise
        raise ValueError(f"{not_trace}: its first line is not a JSON object") from None
    if not isinstance(header, dict) or header.get("format") != _FORMAT_NAME:
        raise ValueError(f'{not_trace}: its first line lacks "format": "{_FORMAT_NAME}"')
    version = header.get("version")
    if version != _FORMAT_VERSION:
        raise ValueError(
            f"{path} is a routilux trace of version {version!r}; this routilux reads "
            f"version {_FORMAT_VERSION} only"
        )
    capacity = header.get("capacity")
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
        raise ValueError(f"{path}: header capacity must be an int >= 1, got {capacity!r}")
    if capacity > MAX_LOAD_CAPACITY:
        raise ValueError(
            f"{path}: line 1: header capacity {capacity} is larger than Tracer.load accepts "
            f"(MAX_LOAD_CAPACITY = {MAX_LOAD_CAPACITY} events)")
    dropped = header.get("dropped")
    if isinstance(dropped, bool) or not isinstance(dropped, int) or not 0 <= dropped < _INT64:
        raise ValueError(f"{path}: header dropped must be an int >= 0, got {dropped!r}")
    pid = header.get("pid")
    if pid is not None and (isinstance(pid, bool) or not isinstance(pid, int)
                            or not 0 <= pid < _INT64):
        raise ValueError(f"{path}: header pid must be an int, got {pid!r}")
    return header


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and -_INT64 <= v < _INT64


def _is_opt_str(v: Any) -> bool:
    return v is None or isinstance(v, str)


_FIELD_CHECKS: tuple[tuple[str, Any, str], ...] = (
    ("seq", _is_int, "a 64-bit int"),
    ("ts_ns", _is_int, "a 64-bit int (nanoseconds)"),
    ("kind", lambda v: isinstance(v, str), "a string"),
    ("thread", lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2 * _INT64,
     "a 64-bit int"),
    ("thread_name", lambda v: isinstance(v, str), "a string"),
    ("worker_id", _is_opt_str, "a string or null"),
    ("job_id", _is_opt_str, "a string or null"),
    ("routine", _is_opt_str, "a string or null"),
    ("name", _is_opt_str, "a string or null"),
    (
        "value",
        lambda v: v is None or (isinstance(v, int | float) and not isinstance(v, bool)),
        "a number or null",
    ),
)


def _parse_event(path: Path, lineno: int, line: str) -> tuple[Any, ...]:
    where = f"{path}: line {lineno}"
    try:
        obj = _loads(where, line)
    except ValueError as exc:
        if str(exc).startswith(where):
            raise
        raise ValueError(f"{where} is not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        # A malformed file is a bad value, not a wrong argument type: ValueError.
        raise ValueError(f"{where}: expected a JSON object, got {type(obj).__name__}")  # noqa: TRY004
    missing = [f for f in _FIELDS if f not in obj]
    if missing:
        raise ValueError(
            f"{where}: missing field(s) {', '.join(missing)}; an event has {', '.join(_FIELDS)}"
        )
    for field, check, expected in _FIELD_CHECKS:
        if not check(obj[field]):
            raise ValueError(f"{where}: {field} must be {expected}, got {obj[field]!r}")
    return tuple(obj[f] for f in _FIELDS)


def _check_sequence(path: Path, rows: list[tuple[Any, ...]], header: dict[str, Any]) -> None:
    expected = header.get("events")
    if expected is not None and expected != len(rows):
        raise ValueError(
            f"{path}: header says {expected!r} events but the file holds {len(rows)} "
            f"(was it truncated?)"
        )
    for prev, row in itertools.pairwise(rows):
        if row[0] != prev[0] + 1:
            raise ValueError(
                f"{path}: event seq {row[0]} follows seq {prev[0]}; a saved trace holds "
                f"consecutive sequence numbers"
            )
    if rows and rows[0][0] < 1:
        raise ValueError(f"{path}: the first event has seq {rows[0][0]}; seq starts at 1")
