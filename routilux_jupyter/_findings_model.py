"""The findings the dashboard lists: from the trace (``finding``, ``deadlock.detected``
events) and from ``diagnose``, each kept once by key, at most ``MAX_FINDINGS``.

Findings are rare (a handful per session), so this holds plain dicts and does nothing per
event; the model calls it only for the kinds that carry a finding.
"""

from __future__ import annotations

from typing import Any

from routilux.diagnostics import FINDING_NOTEBOOKS

__all__ = ["MAX_FINDINGS", "FindingList", "finding_of", "notebook_for"]

MAX_FINDINGS = 50


def notebook_for(kind: str | None) -> str | None:
    """The notebook that explains a finding kind, or None if no notebook covers it."""
    if not kind:
        return None
    return FINDING_NOTEBOOKS.get(kind)


def finding_of(name: Any, detail: Any, t: float) -> dict[str, Any]:
    """A ``finding`` trace event (``routilux.diagnostics`` recorded it) as a finding dict."""
    title = severity = key = None
    if isinstance(detail, dict):
        title, severity, key = detail.get("title"), detail.get("severity"), detail.get("key")
    return {"kind": name or "finding", "severity": severity or "medium",
            "title": title or str(name), "key": key, "t": t}


class FindingList:
    """Findings in arrival order, one per key; ``changed`` since the last message."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.changed = False

    def add(self, finding: dict[str, Any]) -> bool:
        """Add one finding (a dict: kind, severity, title; optional key, evidence, fix...).

        Adds ``notebook`` when missing. Findings with the same ``key`` (default
        ``kind:title``, as ``routilux.diagnostics`` does) are kept once; a later one fills
        in what the earlier one lacked (a trace event has no fix, ``diagnose`` has).
        Returns whether it was new.
        """
        item = {k: v for k, v in finding.items() if v is not None}
        key = item.get("key") or f"{item.get('kind')}:{item.get('title')}"
        item["key"] = key
        if not item.get("notebook"):
            item["notebook"] = notebook_for(item.get("kind"))
        for existing in self.items:
            if existing["key"] == key:
                for name, value in item.items():
                    if value not in (None, "") and name != "t" and existing.get(name) != value:
                        existing[name] = value
                        self.changed = True
                return False
        self.items.append(item)
        del self.items[:-MAX_FINDINGS]
        self.changed = True
        return True

    def message(self, consume: bool = True) -> list[dict[str, Any]]:
        """Copies of every finding; ``consume`` clears ``changed``."""
        if consume:
            self.changed = False
        return [dict(f) for f in self.items]
