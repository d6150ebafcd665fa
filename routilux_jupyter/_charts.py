"""Static matplotlib charts of a ``ModelView``: for snapshots and ``%%routilux trace`` reports.

Built on ``matplotlib.figure.Figure`` directly, never pyplot: no global figure state, no GUI
backend, safe from any thread, and the figure is garbage once dropped. The look matches the
live view: routine colours for tasks, red hatching for lock waits, amber cross-hatching for
barrier waits, a pale lane with a dotted midline for idle. Automatic-sizing decisions are
numbered markers on the pool-size line, listed with their reasons in a panel of their own
below the charts (a list, not annotations on the plot: a second of probes would pile
their texts on each other and over the legend).
"""

from __future__ import annotations

import textwrap
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from routilux.trace import POOL_THREAD_PREFIX

from ._model import BARRIER, BARRIER_LANE, LOCK, TASK, Decision, ModelView

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["dashboard_figure", "figure_png", "format_seconds"]

PALETTE = (
    "#4e79a7", "#59a14f", "#f28e2b", "#b07aa1", "#76b7b2",
    "#9c755f", "#edc948", "#ff9da7", "#8cd17d", "#499894",
)  # fmt: skip
IDLE_BG = "#f1f3f5"
IDLE_LINE = "#c9ced6"
LOCK_COLOR = "#d62728"
BARRIER_COLOR = "#e8890c"
MAX_TABLE_ROWS = 8
DECISION_COLOR = "#7b3fa0"
MAX_DECISION_ROWS = 12  # decisions listed (the newest); the rest are unnumbered markers
DECISION_WRAP = 150  # characters per line of a listed reason
DECISION_LABEL = "sizing decisions"  # the markers' legend label


def decision_rows(decisions: Sequence[Decision]) -> list[tuple[int, Decision, list[str]]]:
    """The decisions the list shows: ``(number, decision, lines)``, the newest
    ``MAX_DECISION_ROWS``, numbered from 1 over all of them (as their markers are)."""
    first = max(0, len(decisions) - MAX_DECISION_ROWS)
    rows = []
    for i, d in enumerate(decisions[first:], start=first + 1):
        text = f"{i}. {d.t:.2f} s  {d.action}: {d.reason}"
        lines = textwrap.wrap(text, DECISION_WRAP, subsequent_indent="      ",
                              max_lines=2, placeholder=" …")
        rows.append((i, d, lines or [text]))
    return rows


def auto_title(view: ModelView) -> str:
    """The queue panel's right-hand title: whether the pool's size is automatic now."""
    if view.auto is None:
        return ""
    if view.auto:
        return "pool size: automatic"
    return "pool size: fixed (automatic sizing turned off)"


def format_seconds(x: float | None) -> str:
    """1.2e-5 -> '12 µs', 0.0123 -> '12.3 ms', 2 -> '2.00 s', None -> '–'."""
    if x is None:
        return "–"
    if x < 1e-3:
        return f"{x * 1e6:.0f} µs"
    if x < 1:
        return f"{x * 1e3:.1f} ms"
    return f"{x:.2f} s"


def _lane_label(name: str) -> str:
    if name.startswith(POOL_THREAD_PREFIX + "-"):  # a pool thread (docs/trace_events.md)
        return "thread-" + name[len(POOL_THREAD_PREFIX) + 1 :]
    return name[:22]


def short_site(site: str | None) -> str | None:
    """"/long/path/app.py:12" -> "app.py:12" (a table cell has no room for the path)."""
    if not site:
        return None
    path, sep, line = site.rpartition(":")
    if not sep or not line.isdigit():
        return site.replace("\\", "/").rsplit("/", 1)[-1]
    return f"{path.replace(chr(92), '/').rsplit('/', 1)[-1]}:{line}"


def caused_label(caused: Any) -> str:
    """The biggest holder of a lock row: "debit @ app.py:12: 1.20 s / 0.50 s"."""
    who = caused.routine if caused.routine is not None else "?"
    where = short_site(caused.site)
    head = f"{who} @ {where}" if where else str(who)
    return f"{head}: {format_seconds(caused.total_s)} / {format_seconds(caused.max_s)}"


def _counters_line(view: ModelView) -> str:
    c = view.counters
    return (
        f"posted {c.get('posted', 0)} · running {c.get('running', 0)} · "
        f"completed {c.get('completed', 0)} · failed {c.get('failed', 0)} · "
        f"{c.get('jobs_per_s', 0)} jobs/s · p95 latency {format_seconds(c.get('p95_latency_s'))}"
    )


def ensure_figure_display() -> None:
    """Let a returned ``Figure`` display as a PNG in IPython, even without ``%matplotlib``.

    We build figures with ``matplotlib.figure.Figure`` (no pyplot state), and IPython
    registers its figure formatter only once pyplot or ``%matplotlib inline`` ran; without
    this a bare ``dashboard.snapshot()`` cell showed ``<Figure size ...>`` as text.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    from matplotlib.figure import Figure

    png = shell.display_formatter.formatters.get("image/png")
    if png is None:
        return
    try:
        png.lookup_by_type(Figure)
    except KeyError:
        png.for_type(Figure, lambda fig: figure_png(fig, dpi=90))


def window_samples(samples: Sequence[tuple[float, int, int, int]], t0: float, t1: float,
                   ) -> list[tuple[float, int, int, int]]:
    """The samples a step chart of [t0, t1] draws: the one in effect at t0 (moved to t0),
    those inside, and the last state repeated at t1 so its step reaches the right edge."""
    out: list[tuple[float, int, int, int]] = []
    for s in samples:
        if s[0] > t1:
            break
        if s[0] <= t0:
            out = [(t0, s[1], s[2], s[3])]
        else:
            out.append(s)
    if out and out[-1][0] < t1:
        out.append((t1, *out[-1][1:]))
    return out


def dashboard_figure(view: ModelView, title: str | None = None) -> Figure:
    """Timeline (one lane per thread), queue depth and busy threads, and the lock table."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    ensure_figure_display()

    order = sorted(
        range(len(view.lanes)), key=lambda i: (view.lanes[i][1] == BARRIER_LANE, i)
    )  # thread lanes first, then barrier lanes
    row_of = {lane: row for row, lane in enumerate(order)}
    n_rows = max(1, len(order))
    timeline_h = min(8.0, 0.8 + 0.28 * n_rows)
    n_locks = min(len(view.locks), MAX_TABLE_ROWS)
    table_h = 0.5 + 0.22 * (n_locks + 1) if n_locks else 0.4
    listed = decision_rows(view.decisions)
    n_lines = sum(len(lines) for _, _, lines in listed) + (len(listed) < len(view.decisions))
    decisions_h = 0.45 + 0.15 * n_lines if listed else 0.0
    fig = Figure(figsize=(11, timeline_h + 2.2 + table_h + decisions_h + 0.6),
                 layout="constrained")
    heights = [timeline_h, 2.0, table_h] + ([decisions_h] if listed else [])
    axes = fig.subplots(len(heights), 1, height_ratios=heights)
    ax_tl, ax_q, ax_tab = axes[:3]
    t1 = view.now_s
    t0 = t1 - view.window_s
    if view.samples or view.bars:
        first = min([b[1] for b in view.bars] + [s[0] for s in view.samples])
        t0 = max(t0, first)
    if t1 <= t0:
        t1 = t0 + 1e-3

    # -- timeline ------------------------------------------------------------------------
    for row, lane in enumerate(order):
        ax_tl.axhspan(row - 0.42, row + 0.42, color=IDLE_BG, lw=0)
        ax_tl.plot([t0, t1], [row, row], color=IDLE_LINE, lw=0.8, ls=(0, (1, 2)))
    groups: dict[tuple[int, str, int], list[tuple[float, float]]] = defaultdict(list)
    for lane, b0, b1, kind, routine in view.bars:
        if b1 < t0 or lane not in row_of:
            continue
        start = max(b0, t0)
        groups[(lane, kind, routine)].append((start, max(b1 - start, (t1 - t0) / 2000)))
    for kind_order in (BARRIER, TASK, LOCK):
        for (lane, kind, routine), spans in groups.items():
            if kind != kind_order:
                continue
            row = row_of[lane]
            if kind == TASK:
                style = {"facecolors": PALETTE[routine % len(PALETTE)], "linewidth": 0}
                ax_tl.broken_barh(spans, (row - 0.34, 0.68), **style)
            elif kind == LOCK:
                ax_tl.broken_barh(
                    spans, (row - 0.42, 0.84), facecolors="#fde2e2", edgecolors=LOCK_COLOR,
                    hatch="////", linewidth=0.6,
                )  # fmt: skip
            else:
                ax_tl.broken_barh(
                    spans, (row - 0.42, 0.84), facecolors="#fff1dc", edgecolors=BARRIER_COLOR,
                    hatch="xx", linewidth=0.6,
                )  # fmt: skip
    ax_tl.set_yticks(range(len(order)))
    ax_tl.set_yticklabels([_lane_label(view.lanes[i][0]) for i in order], fontsize=8)
    ax_tl.set_ylim(n_rows - 0.5, -0.5)
    ax_tl.set_xlim(t0, t1)
    ax_tl.set_xlabel("seconds", fontsize=8)
    ax_tl.tick_params(axis="x", labelsize=8)
    ax_tl.set_title("Pool threads", loc="left", fontsize=10)
    if not order:
        ax_tl.text(0.5, 0.5, "no tasks in the trace", transform=ax_tl.transAxes,
                   ha="center", va="center", color="#888")  # fmt: skip
    handles = [
        Patch(facecolor=PALETTE[i % len(PALETTE)], label=name)
        for i, name in enumerate(view.routines)
        if any(k == TASK and r == i for _, k, r in groups)
    ][:12]
    handles += [
        Patch(facecolor="#fde2e2", edgecolor=LOCK_COLOR, hatch="////", label="waiting for a lock"),
        Patch(
            facecolor="#fff1dc", edgecolor=BARRIER_COLOR, hatch="xx", label="waiting at a barrier"
        ),
        Patch(facecolor=IDLE_BG, edgecolor=IDLE_LINE, linestyle=":", label="idle"),
    ]
    ax_tl.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=7,
                 frameon=False)  # fmt: skip

    # -- queue depth and busy threads ----------------------------------------------------
    # view.samples is routilux.trace.pool_series (one sample per change): drawn as steps,
    # from the sample in effect at t0 to now, so the panel agrees with the timeline above.
    samples = window_samples(view.samples, t0, t1)
    if samples:
        ts = [s[0] for s in samples]
        ax_q.fill_between(ts, [s[1] for s in samples], step="post", color="#4e79a7",
                          alpha=0.35, lw=0)  # fmt: skip
        ax_q.step(ts, [s[1] for s in samples], where="post", color="#4e79a7", lw=0.6,
                  label="queued")  # fmt: skip
        ax_q.set_ylim(bottom=0, top=max(1, max(s[1] for s in samples)) * 1.1)
        ax_q.set_ylabel("queued", fontsize=8, color="#4e79a7")
        ax_threads = ax_q.twinx()  # threads on their own scale: 8 busy next to 2,000 queued
        ax_threads.step(ts, [s[2] for s in samples], where="post", color="#2ca02c", lw=1.4,
                        label="busy threads")  # fmt: skip
        ax_threads.step(ts, [s[3] for s in samples], where="post", color="#888", lw=1.0,
                        ls="--", label="pool size")  # fmt: skip
        shown = [(i, d) for i, d in enumerate(view.decisions, start=1)
                 if d.new is not None and t0 <= d.t <= t1]
        if shown:  # each decision where the size line changes (or stays, for on/keep)
            ax_threads.plot([d.t for _, d in shown], [d.new for _, d in shown], ls="",
                            marker="o", ms=4.5, mfc="white", mec=DECISION_COLOR, mew=1.3,
                            label=DECISION_LABEL)  # fmt: skip
            numbered = {i for i, _, _ in listed}
            for i, d in shown:
                if i in numbered:
                    ax_threads.annotate(str(i), (d.t, d.new), xytext=(0, 5),
                                        textcoords="offset points", ha="center",
                                        fontsize=6.5, color=DECISION_COLOR)  # fmt: skip
        top = max(max(s[2], s[3]) for s in samples)
        top = max([top, *(d.new for _, d in shown)])
        ax_threads.set_ylim(0, max(1, top) * 1.15)
        ax_threads.set_ylabel("threads", fontsize=8, color="#2ca02c")
        ax_threads.tick_params(labelsize=8)
        handles = [
            Patch(facecolor="#4e79a7", alpha=0.35, label="queued"),
            *ax_threads.get_legend_handles_labels()[0],
        ]
        ax_q.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.06, 1.0), fontsize=7,
                    frameon=False)  # fmt: skip
    else:
        ax_q.text(0.5, 0.5, "no pool samples: the trace holds no events yet",
                  transform=ax_q.transAxes, ha="center", va="center", color="#888")  # fmt: skip
    ax_q.set_xlim(t0, t1)
    ax_q.tick_params(labelsize=8)
    ax_q.set_title("Queue depth and busy threads", loc="left", fontsize=10)
    if auto_title(view):
        ax_q.set_title(auto_title(view), loc="right", fontsize=9,
                       color=DECISION_COLOR if view.auto else "#666")  # fmt: skip

    # -- lock table ----------------------------------------------------------------------
    ax_tab.axis("off")
    if n_locks:
        rows = [
            [
                row.name + (" (deadlock)" if row.deadlocked else ""),
                str(row.waits),
                format_seconds(row.total_wait_s),
                format_seconds(row.max_wait_s),
                _lane_label(row.holder) if row.holder else "–",
                ", ".join(_lane_label(w) for w in row.waiters) or "–",
                caused_label(row.caused[0]) if row.caused else "–",
            ]
            for row in view.locks[:MAX_TABLE_ROWS]
        ]
        table = ax_tab.table(
            cellText=rows,
            colLabels=["lock", "waits", "total wait", "max wait", "holder", "waiters",
                       "waiting caused by (holder: total / max)"],
            # widths that add up to the panel, the holder charge widest: without them the
            # last column ran past the table's right edge
            colWidths=[0.17, 0.07, 0.1, 0.1, 0.12, 0.1, 0.34],
            loc="upper left",
            cellLoc="left",
        )
        table.auto_set_font_size(False)
        table.set_fontsize(8)
        ax_tab.set_title("Lock contention", loc="left", fontsize=10)
    else:
        ax_tab.text(0.0, 0.5, "Lock contention: no traced lock was contended",
                    transform=ax_tab.transAxes, va="center", fontsize=9, color="#666")  # fmt: skip

    # -- automatic-sizing decisions: the list the numbered markers point to -------------
    if listed:
        ax_dec = axes[3]
        ax_dec.axis("off")
        lines = [line for _, _, ls in listed for line in ls]
        if len(listed) < len(view.decisions):
            lines.insert(0, f"({len(view.decisions) - len(listed)} earlier decisions are "
                            "unnumbered markers; report(...).decisions lists them all)")
        ax_dec.text(0.0, 1.0, "\n".join(lines), transform=ax_dec.transAxes, va="top",
                    ha="left", fontsize=7, family="monospace", linespacing=1.35)  # fmt: skip
        ax_dec.set_title("Pool size decisions (automatic sizing)", loc="left", fontsize=10)

    heading = title or "routilux"
    fig.suptitle(f"{heading}\n{_counters_line(view)}", fontsize=10, x=0.01, ha="left")
    if view.dropped:
        fig.text(0.99, 0.995, f"{view.dropped:,} events dropped", ha="right", va="top",
                 fontsize=9, color="white", weight="bold",
                 bbox={"facecolor": LOCK_COLOR, "edgecolor": "none", "pad": 2})  # fmt: skip
    return fig


def figure_png(fig: Figure, dpi: int = 90) -> bytes:
    """The figure as PNG bytes (Agg canvas; no pyplot)."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
