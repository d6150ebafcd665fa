"""Findings from ``routilux.diagnostics``: running it, and showing what it says.

``routilux.diagnostics.diagnose(source) -> list[Finding]`` (Finding: kind, severity, title,
evidence, fix, events) is the only thing used from the detectors. A routilux without that
module still gets dashboards and reports; asking for findings then says so in one line.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

from ._findings_model import notebook_for

__all__ = [
    "DIAGNOSTICS_MISSING",
    "DiagnosticsUnavailable",
    "finding_dicts",
    "findings_html",
    "findings_text",
    "run_diagnose",
]

DIAGNOSTICS_MISSING = (
    "routilux.diagnostics is not available in this routilux installation, so there are no "
    "findings to show (findings recorded in the trace still appear in the dashboard)"
)


class DiagnosticsUnavailable(ImportError):
    """``routilux.diagnostics.diagnose`` cannot be imported."""


def run_diagnose(source: Any, record: bool = False) -> list[Any]:
    """``routilux.diagnostics.diagnose(source, record=record)`` as a list.

    With ``record``, each new finding also goes into the source's trace as a ``finding``
    event (once per finding), so live dashboards and exported traces show it too.

    Raises:
        DiagnosticsUnavailable: The module or its ``diagnose`` is missing (an ImportError
            whose message says so in one line).
    """
    try:
        from routilux.diagnostics import diagnose
    except ImportError as exc:
        if exc.name != "routilux.diagnostics":
            raise  # the module exists but one of its own imports failed: a real bug
        raise DiagnosticsUnavailable(DIAGNOSTICS_MISSING) from exc
    return list(diagnose(source, record=record))


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "; ".join(f"{k}: {v}" for k, v in value.items())
    if isinstance(value, Iterable):
        return "; ".join(str(v) for v in value)
    return str(value)


def _edge_text(edge: Any) -> str:
    """One lock-order edge in words: "'a' -> 'b' in routine 'r' (worker-1, job 1f3e9a7b, at
    app.py:12)"."""
    if not isinstance(edge, dict):
        return str(edge)
    text = f"{edge.get('held')!r} -> {edge.get('acquired')!r}"
    if edge.get("routine") is not None:
        text += f" in routine {edge['routine']!r}"
    where = [str(edge["thread"])] if edge.get("thread") else []
    if edge.get("job"):
        where.append(f"job {str(edge['job'])[:8]}")
    if edge.get("site"):
        where.append(f"at {edge['site']}")
    return text + (f" ({', '.join(where)})" if where else "")


def _evidence_text(kind: str, evidence: Any) -> str | None:
    """Evidence in words; a lock-order finding's edges one by one, then the order to adopt."""
    if kind == "lock_order" and isinstance(evidence, dict) and evidence.get("edges"):
        parts = [f"edge {_edge_text(edge)}" for edge in evidence["edges"]]
        if evidence.get("order"):
            parts.append("order to adopt: " + " then ".join(map(repr, evidence["order"])))
        return "; ".join(parts)
    return _text(evidence)


def finding_dicts(findings: Iterable[Any]) -> list[dict[str, Any]]:
    """Finding objects (or dicts) as plain JSON-able dicts with a ``notebook`` each."""
    out = []
    for f in findings:
        get = f.get if isinstance(f, dict) else lambda k, f=f: getattr(f, k, None)
        kind = str(get("kind") or "finding")
        events = get("events")
        item = {
            "kind": kind,
            "severity": str(get("severity") or "medium").lower(),
            "title": _text(get("title")) or kind,
            "evidence": _evidence_text(kind, get("evidence")),
            "fix": _text(get("fix")),
            "notebook": get("notebook") or notebook_for(kind),
            "events": len(events) if isinstance(events, list | tuple) else None,
            "key": get("key") or None,
        }
        out.append(item)
    return out


def findings_text(findings: list[dict[str, Any]], note: str | None = None) -> str:
    """Plain text: one block per finding (severity, title, evidence, fix, notebook)."""
    if not findings:
        return note or "No findings: none of the pitfall detectors fired."
    lines = []
    for f in findings:
        lines.append(f"[{f['severity']}] {f['title']}")
        if f.get("evidence"):
            lines.append(f"    evidence: {f['evidence']}")
        if f.get("fix"):
            lines.append(f"    fix: {f['fix']}")
        if f.get("notebook"):
            lines.append(f"    explained in: {f['notebook']}")
    if note:
        lines.append(note)
    return "\n".join(lines)


_SEVERITY_COLORS = {"high": "#d62728", "medium": "#e8890c", "low": "#888888"}


def findings_html(findings: list[dict[str, Any]], note: str | None = None) -> str:
    """The same as ``findings_text`` as small, self-contained HTML (escaped)."""
    esc = html.escape
    if not findings:
        text = note or "No findings: none of the pitfall detectors fired."
        return f"<div><b>Findings</b><br><span style='color:#555'>{esc(text)}</span></div>"
    items = []
    for f in findings:
        color = _SEVERITY_COLORS.get(f["severity"], "#888")
        badge = (
            f"<span style='background:{color};color:#fff;border-radius:3px;padding:0 5px'>"
            f"{esc(f['severity'])}</span>"
        )
        parts = [f"{badge} <b>{esc(f['title'])}</b>"]
        if f.get("evidence"):
            parts.append(f"<div>Evidence: {esc(f['evidence'])}</div>")
        if f.get("fix"):
            parts.append(f"<div>Fix: {esc(f['fix'])}</div>")
        if f.get("notebook"):
            nb = esc(f["notebook"])
            parts.append(f"<div>Explained in <a href='{nb}' target='_blank'>{nb}</a></div>")
        items.append("<li>" + "".join(parts) + "</li>")
    tail = f"<div style='color:#555'>{esc(note)}</div>" if note else ""
    return f"<div><b>Findings</b><ul>{''.join(items)}</ul>{tail}</div>"
