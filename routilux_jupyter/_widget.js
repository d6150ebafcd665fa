// routilux live dashboard: the browser half of routilux_jupyter.Dashboard.
//
// The kernel's pump sets the `_delta` trait at most ~10 times a second; each value is a
// compact delta (see routilux_jupyter/_dashboard.py for the format). This view keeps a
// bounded history (the last `window_s` seconds, at most MAX_BARS bars) and redraws two
// canvases and a few DOM blocks per delta. A new view asks the kernel for the whole history
// with a {type: "hello"} message and gets {type: "reset", frame} back.
// Plain ES module, no build step, no dependencies. User text is set with textContent only.

const MAX_BARS = 20000;
const MAX_DECISIONS = 200; // automatic-sizing decisions kept (those inside the window)
const DECISION_COLOR = "#7b3fa0";
const HIT_PX = 7; // how close the pointer must be to a decision marker to show its reason
const LANE_H = 16;
const LABEL_W = 118;
const RIGHT_W = 44;
const PALETTE = [
  "#4e79a7", "#59a14f", "#f28e2b", "#b07aa1", "#76b7b2",
  "#9c755f", "#edc948", "#ff9da7", "#8cd17d", "#499894",
];
const IDLE_BG = "#f1f3f5";
const IDLE_LINE = "#c9ced6";
const LOCK_COLOR = "#d62728";
const BARRIER_COLOR = "#e8890c";

function emptyState() {
  return {
    tick: 0, t: 0, tFirst: null, windowS: 30, lanes: [], routines: [], bars: [], open: [],
    samples: [], counters: {}, dropped: 0, locks: [], findings: [], status: "",
    error: null, tracing: true, pool: null, decisions: [], auto: null, autoReason: null,
  };
}

function apply(s, m) {
  if (!m || typeof m !== "object" || !m.tick && !m.reset) return false;
  if (m.reset) {
    Object.assign(s, emptyState());
  } else if (m.tick <= s.tick) {
    return false; // already contained in a reset that overtook it
  }
  s.tick = m.tick;
  s.t = m.t;
  if (m.window_s) s.windowS = m.window_s;
  for (const [i, name, type] of m.lanes || []) s.lanes[i] = { name, type };
  for (const [i, name] of m.routines || []) s.routines[i] = name;
  for (const b of m.bars || []) {
    s.bars.push(b);
    if (s.tFirst === null || b[1] < s.tFirst) s.tFirst = b[1];
  }
  for (const x of m.samples || []) {
    s.samples.push(x);
    if (s.tFirst === null || x[0] < s.tFirst) s.tFirst = x[0];
  }
  if (m.open) s.open = m.open; // a status-only note leaves the open bars as they were
  for (const o of s.open) if (s.tFirst === null || o[1] < s.tFirst) s.tFirst = o[1];
  if (m.counters) s.counters = m.counters;
  if (m.dropped !== undefined) s.dropped = m.dropped;
  if (m.locks) s.locks = m.locks;
  if (m.findings) s.findings = m.findings;
  if (m.status !== undefined) s.status = m.status;
  if (m.error !== undefined) s.error = m.error;
  if (m.tracing !== undefined) s.tracing = m.tracing;
  if (m.pool) s.pool = m.pool;
  for (const d of m.decisions || []) s.decisions.push(d); // [t, action, old, new, reason]
  if (m.auto !== undefined) s.auto = m.auto;
  if (m.auto_reason !== undefined) s.autoReason = m.auto_reason;
  const tmin = s.t - s.windowS;
  if (s.bars.length && s.bars[0][2] < tmin) s.bars = s.bars.filter((b) => b[2] >= tmin);
  if (s.bars.length > MAX_BARS) s.bars = s.bars.slice(s.bars.length - MAX_BARS);
  if (s.samples.length && s.samples[0][0] < tmin) {
    s.samples = s.samples.filter((x) => x[0] >= tmin);
  }
  if (s.decisions.length && s.decisions[0][0] < tmin) {
    s.decisions = s.decisions.filter((d) => d[0] >= tmin);
  }
  if (s.decisions.length > MAX_DECISIONS) s.decisions = s.decisions.slice(-MAX_DECISIONS);
  return true;
}

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function fmtS(x) {
  if (x === null || x === undefined) return "–";
  if (x < 1e-3) return `${(x * 1e6).toFixed(0)} µs`;
  if (x < 1) return `${(x * 1e3).toFixed(1)} ms`;
  return `${x.toFixed(2)} s`;
}

function laneLabel(name) {
  // Pool threads are named routilux.trace.POOL_THREAD_PREFIX + "-<n>" (docs/trace_events.md).
  return String(name).replace(/^RoutiluxThread-/, "thread-");
}

function hatch(ctx, color, bg, cross) {
  const c = document.createElement("canvas");
  c.width = 8;
  c.height = 8;
  const g = c.getContext("2d");
  g.fillStyle = bg;
  g.fillRect(0, 0, 8, 8);
  g.strokeStyle = color;
  g.lineWidth = 1.5;
  g.beginPath();
  g.moveTo(0, 8);
  g.lineTo(8, 0);
  if (cross) {
    g.moveTo(0, 0);
    g.lineTo(8, 8);
  }
  g.stroke();
  return ctx.createPattern(c, "repeat");
}

function sizeCanvas(canvas, cssW, cssH) {
  const dpr = window.devicePixelRatio || 1;
  canvas.style.width = `${cssW}px`;
  canvas.style.height = `${cssH}px`;
  canvas.width = Math.round(cssW * dpr);
  canvas.height = Math.round(cssH * dpr);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return ctx;
}

// Seconds shown: the whole window once it has filled, until then everything seen so far
// (a two-second run fills the width instead of a sliver at the right edge).
function spanOf(s) {
  const seen = s.tFirst === null ? 0 : s.t - s.tFirst;
  return Math.max(0.05, Math.min(s.windowS, seen * 1.02));
}

const STEPS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600];

function timeAxis(ctx, x0, w, y, s) {
  const span = spanOf(s);
  ctx.fillStyle = "#666";
  ctx.font = "10px sans-serif";
  ctx.textAlign = "center";
  ctx.textBaseline = "alphabetic";
  const step = STEPS.find((x) => span / x <= 7) || 600;
  const digits = step < 0.1 ? 2 : step < 1 ? 1 : 0;
  for (let k = 0; k <= span + 1e-9; k += step) {
    const x = x0 + w - (k / span) * w;
    ctx.fillRect(x, y, 1, 3);
    ctx.fillText(k === 0 ? "now" : `-${k.toFixed(digits)}s`, x, y + 12);
  }
}

function drawTimeline(canvas, s, cssW) {
  const lanes = [];
  s.lanes.forEach((lane, i) => lane && lanes.push([i, lane]));
  lanes.sort((a, b) => (a[1].type === b[1].type ? a[0] - b[0] : a[1].type === "thread" ? -1 : 1));
  const rows = Math.max(lanes.length, 1);
  const ctx = sizeCanvas(canvas, cssW, rows * LANE_H + 18);
  const x0 = LABEL_W;
  const w = Math.max(50, cssW - LABEL_W - RIGHT_W);
  const span = spanOf(s);
  const tmin = s.t - span;
  const X = (t) => x0 + ((t - tmin) / span) * w;
  const rowOf = new Map();
  const lockPat = hatch(ctx, LOCK_COLOR, "#fde2e2", false);
  const barrierPat = hatch(ctx, BARRIER_COLOR, "#fff1dc", true);
  ctx.font = "11px sans-serif";
  ctx.textBaseline = "middle";
  if (!lanes.length) {
    ctx.fillStyle = "#888";
    ctx.fillText(s.tracing ? "no tasks traced yet" : "tracing is off: create the runtime with Runtime(trace=True) to see the timeline", 8, LANE_H / 2 + 2);
  }
  lanes.forEach(([i, lane], row) => {
    rowOf.set(i, row);
    const y = row * LANE_H;
    ctx.fillStyle = IDLE_BG; // idle: the lane's own background, with a dotted midline
    ctx.fillRect(x0, y + 1, w, LANE_H - 2);
    ctx.strokeStyle = IDLE_LINE;
    ctx.setLineDash([2, 3]);
    ctx.beginPath();
    ctx.moveTo(x0, y + LANE_H / 2);
    ctx.lineTo(x0 + w, y + LANE_H / 2);
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = lane.type === "barrier" ? BARRIER_COLOR : "#333";
    ctx.textAlign = "right";
    ctx.fillText(laneLabel(lane.name).slice(0, 18), x0 - 6, y + LANE_H / 2);
  });
  const busy = new Map();
  const drawBar = (lane, t0, t1, kind, r, open) => {
    const row = rowOf.get(lane);
    if (row === undefined || t1 < tmin) return;
    const a = Math.max(X(t0), x0);
    const b = Math.min(X(t1), x0 + w);
    const y = row * LANE_H;
    if (kind === "task") {
      busy.set(lane, (busy.get(lane) || 0) + Math.max(0, t1 - Math.max(t0, tmin)));
      ctx.fillStyle = PALETTE[((r % PALETTE.length) + PALETTE.length) % PALETTE.length];
      ctx.fillRect(a, y + 2, Math.max(1, b - a), LANE_H - 4);
    } else if (kind === "lock") {
      ctx.fillStyle = lockPat;
      ctx.fillRect(a, y + 1, Math.max(1, b - a), LANE_H - 2);
      ctx.fillStyle = LOCK_COLOR;
      ctx.fillRect(a, y + LANE_H - 3, Math.max(1, b - a), 2);
    } else {
      ctx.fillStyle = barrierPat;
      ctx.fillRect(a, y + 1, Math.max(1, b - a), LANE_H - 2);
    }
    if (open) {
      ctx.fillStyle = "rgba(0,0,0,0.55)";
      ctx.fillRect(b - 1, y + 1, 1, LANE_H - 2);
    }
  };
  for (const kind of ["barrier", "task", "lock"]) {
    for (const bar of s.bars) if (bar[3] === kind) drawBar(bar[0], bar[1], bar[2], kind, bar[4], false);
    for (const o of s.open) if (o[2] === kind) drawBar(o[0], o[1], s.t, kind, o[3], true);
  }
  ctx.textAlign = "left";
  ctx.fillStyle = "#555";
  lanes.forEach(([i, lane], row) => {
    if (lane.type !== "thread") return;
    const pct = Math.min(100, (100 * (busy.get(i) || 0)) / span);
    ctx.fillText(`${pct.toFixed(0)}%`, x0 + w + 6, row * LANE_H + LANE_H / 2);
  });
  timeAxis(ctx, x0, w, rows * LANE_H + 2, s);
}

function decisionText(d) {
  const [t, action, , , reason] = d;
  return `${t.toFixed(2)} s · ${action}: ${reason}`;
}

// Returns the decision markers drawn, [{x, y, text}], for the hover lookup.
function drawSeries(canvas, s, cssW) {
  const H = 96;
  const ctx = sizeCanvas(canvas, cssW, H + 18);
  const x0 = LABEL_W;
  const w = Math.max(50, cssW - LABEL_W - RIGHT_W);
  const span = spanOf(s);
  const tmin = s.t - span;
  const X = (t) => x0 + ((t - tmin) / span) * w;
  let ymax = 1;
  let tmax = 1;
  for (const [, q, b, z] of s.samples) {
    ymax = Math.max(ymax, q);
    tmax = Math.max(tmax, b, z);
  }
  for (const d of s.decisions) if (typeof d[3] === "number") tmax = Math.max(tmax, d[3]);
  const Y = (v) => H - 4 - (v / ymax) * (H - 10); // queued: left scale
  const T = (v) => H - 4 - (v / (tmax * 1.1)) * (H - 10); // threads: right scale
  ctx.fillStyle = "#fafbfc";
  ctx.fillRect(x0, 0, w, H);
  ctx.font = "10px sans-serif";
  ctx.textBaseline = "middle";
  ctx.textAlign = "right";
  ctx.fillStyle = "#4e79a7";
  ctx.fillText(String(ymax), x0 - 6, Y(ymax));
  ctx.fillText("0", x0 - 6, Y(0));
  ctx.fillText("queued", x0 - 6, H / 2);
  ctx.textAlign = "left";
  ctx.fillStyle = "#2ca02c";
  ctx.fillText(String(tmax), x0 + w + 6, T(tmax));
  ctx.fillText("busy", x0 + w + 6, H / 2);
  ctx.fillStyle = "#888";
  ctx.fillText("size", x0 + w + 6, H / 2 + 12);
  const pts = s.samples.filter((x) => x[0] >= tmin);
  if (pts.length) {
    ctx.beginPath(); // queue depth: a filled area
    ctx.moveTo(X(pts[0][0]), Y(0));
    ctx.lineTo(X(pts[0][0]), Y(pts[0][1]));
    for (let k = 1; k < pts.length; k++) { // steps, as the kernel's charts draw them
      ctx.lineTo(X(pts[k][0]), Y(pts[k - 1][1]));
      ctx.lineTo(X(pts[k][0]), Y(pts[k][1]));
    }
    ctx.lineTo(X(pts[pts.length - 1][0]), Y(0));
    ctx.closePath();
    ctx.fillStyle = "rgba(78,121,167,0.35)";
    ctx.fill();
    const step = (idx, color, dash) => {
      ctx.beginPath();
      ctx.setLineDash(dash);
      ctx.strokeStyle = color;
      ctx.lineWidth = 1.5;
      ctx.moveTo(X(pts[0][0]), T(pts[0][idx]));
      for (let k = 1; k < pts.length; k++) {
        ctx.lineTo(X(pts[k][0]), T(pts[k - 1][idx]));
        ctx.lineTo(X(pts[k][0]), T(pts[k][idx]));
      }
      ctx.stroke();
      ctx.setLineDash([]);
    };
    step(3, "#888", [4, 3]); // pool size
    step(2, "#2ca02c", []); // busy threads
  }
  const hits = [];
  for (const d of s.decisions) { // a ring where the size line changes (or is confirmed)
    if (d[0] < tmin || typeof d[3] !== "number") continue;
    const x = X(d[0]);
    const y = T(d[3]);
    ctx.beginPath();
    ctx.arc(x, y, 3.5, 0, 2 * Math.PI);
    ctx.fillStyle = "#fff";
    ctx.fill();
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = DECISION_COLOR;
    ctx.stroke();
    hits.push({ x, y, text: decisionText(d) });
  }
  if (hits.length) {
    ctx.fillStyle = DECISION_COLOR;
    ctx.fillText("○ sizing", x0 + w + 6, H / 2 + 24);
  }
  timeAxis(ctx, x0, w, H + 2, s);
  canvas.dataset.decisions = String(hits.length);
  canvas.rlxHits = hits; // where the markers are: for tests that hover over them
  return hits;
}

function renderCounters(box, s) {
  box.replaceChildren();
  const c = s.counters || {};
  const chip = (label, value, cls) => {
    const node = el("span", `rlx-chip ${cls || ""}`);
    node.append(el("b", null, value), el("span", null, ` ${label}`));
    box.append(node);
  };
  chip("posted", c.posted ?? 0);
  chip("running", c.running ?? 0);
  chip("completed", c.completed ?? 0);
  chip("failed", c.failed ?? 0, c.failed ? "rlx-bad" : "");
  chip("jobs/s", c.jobs_per_s ?? 0);
  chip("p95 latency", fmtS(c.p95_latency_s));
  if (s.dropped > 0) {
    box.append(el("span", "rlx-chip rlx-dropped", `${s.dropped.toLocaleString()} events dropped`));
  }
}

function renderStatus(line, s) {
  if (s.error) {
    line.className = "rlx-status rlx-error";
    line.textContent = `⚠ ${s.error}`;
  } else {
    line.className = "rlx-status";
    const p = s.pool;
    const pool = p ? ` · pool ${p.size} (${p.threads} threads, ${p.busy} busy, ${p.queued} queued)` : "";
    line.textContent = `${s.status || ""}${pool}`;
  }
}

// The "auto" badge beside the queue panel's title, and the controller's latest words.
// Turned off (a resize(n), the slider included), the badge goes and the line says so.
function renderAuto(badge, line, s) {
  badge.hidden = s.auto !== true;
  badge.title = s.autoReason || "";
  if (s.auto === true) {
    line.textContent = `automatic sizing: ${s.autoReason || "measuring"}`;
  } else if (s.auto === false) {
    const size = s.pool ? ` at ${s.pool.size}` : "";
    line.textContent = `automatic sizing is off: the size stays${size} until resized`;
  } else {
    line.textContent = "";
  }
  line.hidden = !line.textContent;
}

function renderLegend(box, s) {
  box.replaceChildren();
  const item = (swatch, label) => {
    const node = el("span", "rlx-legend-item");
    node.append(swatch, el("span", null, label));
    box.append(node);
  };
  const sw = (style) => {
    const node = el("span", "rlx-swatch");
    Object.assign(node.style, style);
    return node;
  };
  s.routines.forEach((name, r) => {
    if (name !== undefined) item(sw({ background: PALETTE[r % PALETTE.length] }), name);
  });
  item(sw({ background: `repeating-linear-gradient(135deg, ${LOCK_COLOR} 0 2px, #fde2e2 2px 5px)` }), "waiting for a lock");
  item(sw({ background: `repeating-linear-gradient(45deg, ${BARRIER_COLOR} 0 2px, #fff1dc 2px 5px)` }), "waiting at a barrier");
  item(sw({ background: IDLE_BG, border: `1px dashed ${IDLE_LINE}` }), "idle");
}

function renderLocks(box, s) {
  box.replaceChildren();
  if (!s.locks.length) return;
  const table = el("table", "rlx-locks");
  const head = el("tr");
  for (const h of ["lock", "waits", "total wait", "max wait", "holder", "waiters",
                   "waiting caused by (holder: total / max)"]) head.append(el("th", null, h));
  table.append(head);
  for (const [name, waits, total, max, holder, waiters, dead, caused] of s.locks) {
    const tr = el("tr", dead ? "rlx-dead" : "");
    // caused: [[routine, site, total_s, max_s, holds], ...], biggest first
    const causedText = (caused || []).map(([routine, site, ctotal, cmax]) => {
      const where = site ? ` @ ${String(site).replace(/\\/g, "/").split("/").pop()}` : "";
      return `${routine ?? "?"}${where}: ${fmtS(ctotal)} / ${fmtS(cmax)}`;
    }).join("; ") || "–";
    tr.append(
      el("td", null, dead ? `${name} (deadlock)` : name), el("td", null, waits),
      el("td", null, fmtS(total)), el("td", null, fmtS(max)),
      el("td", null, holder ? laneLabel(holder) : "–"),
      el("td", null, (waiters || []).map(laneLabel).join(", ") || "–"),
      el("td", null, causedText),
    );
    table.append(tr);
  }
  box.append(el("div", "rlx-title", "Lock contention"), table);
}

function renderFindings(box, s) {
  box.replaceChildren();
  if (!s.findings.length) return;
  box.append(el("div", "rlx-title", "Findings"));
  const list = el("ul", "rlx-findings");
  for (const f of s.findings) {
    const li = el("li");
    const sev = String(f.severity || "medium");
    li.append(el("span", `rlx-sev rlx-sev-${sev.replace(/[^a-z]/g, "")}`, sev));
    li.append(el("b", null, ` ${f.title || f.kind}`));
    if (f.evidence) {
      const ev = typeof f.evidence === "object"
        ? Object.entries(f.evidence).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(", ") : v}`).join("; ")
        : f.evidence;
      li.append(el("div", "rlx-evidence", `Evidence: ${ev}`));
    }
    if (f.fix) li.append(el("div", "rlx-fix", `Fix: ${f.fix}`));
    if (f.notebook) {
      const more = el("div", "rlx-more", "Explained in ");
      const a = el("a", null, f.notebook);
      a.href = f.notebook;
      a.target = "_blank";
      more.append(a);
      li.append(more);
    }
    list.append(li);
  }
  box.append(list);
}

function render({ model, el: host }) {
  const s = emptyState();
  const root = el("div", "rlx-dash");
  const counters = el("div", "rlx-counters");
  const status = el("div", "rlx-status");
  const timeline = el("canvas", "rlx-timeline");
  const series = el("canvas", "rlx-series");
  const seriesBox = el("div", "rlx-series-box");
  const tip = el("div", "rlx-tip");
  tip.hidden = true;
  seriesBox.append(series, tip);
  const seriesTitle = el("div", "rlx-title", "Queue depth and busy threads");
  const autoBadge = el("span", "rlx-badge-auto", "auto");
  autoBadge.hidden = true;
  seriesTitle.append(" ", autoBadge);
  const autoLine = el("div", "rlx-auto-line");
  autoLine.hidden = true;
  const legend = el("div", "rlx-legend");
  const locks = el("div", "rlx-locks-box");
  const findings = el("div", "rlx-findings-box");
  root.append(counters, status, el("div", "rlx-title", "Pool threads"), timeline, legend,
    seriesTitle, seriesBox, autoLine, locks, findings);
  host.append(root);

  let hits = [];
  const hover = (ev) => {
    const box = series.getBoundingClientRect();
    const x = ev.clientX - box.left;
    const y = ev.clientY - box.top;
    let best = null;
    let bestD = HIT_PX;
    for (const h of hits) {
      const d = Math.max(Math.abs(h.x - x), Math.abs(h.y - y) / 2);
      if (d <= bestD) { best = h; bestD = d; }
    }
    if (!best) {
      tip.hidden = true;
      series.title = "";
      return;
    }
    tip.textContent = best.text;
    series.title = best.text;
    tip.hidden = false;
    tip.style.left = `${Math.min(best.x + 8, Math.max(0, box.width - 360))}px`;
    tip.style.top = `${best.y + 10}px`;
  };
  const unhover = () => {
    tip.hidden = true;
    series.title = "";
  };
  series.addEventListener("mousemove", hover);
  series.addEventListener("mouseleave", unhover);

  const draw = () => {
    const cssW = Math.max(320, root.clientWidth || host.clientWidth || 900);
    try {
      drawTimeline(timeline, s, cssW);
      hits = drawSeries(series, s, cssW);
      renderAuto(autoBadge, autoLine, s);
      renderCounters(counters, s);
      renderStatus(status, s);
      renderLegend(legend, s);
      renderLocks(locks, s);
      renderFindings(findings, s);
      root.dataset.tick = String(s.tick);
    } catch (err) {
      status.className = "rlx-status rlx-error";
      status.textContent = `⚠ drawing failed: ${err}`;
    }
  };
  const onDelta = () => {
    if (apply(s, model.get("_delta"))) draw();
  };
  const onMsg = (msg) => {
    if (msg && msg.type === "reset" && apply(s, msg.frame)) draw();
  };
  model.on("change:_delta", onDelta);
  model.on("msg:custom", onMsg);
  onDelta();
  draw();
  model.send({ type: "hello" });
  let observer = null;
  if (typeof ResizeObserver !== "undefined") {
    let lastW = 0;
    observer = new ResizeObserver(() => {
      const w = root.clientWidth;
      if (Math.abs(w - lastW) > 2) {
        lastW = w;
        draw();
      }
    });
    observer.observe(root);
  }
  return () => {
    model.off("change:_delta", onDelta);
    model.off("msg:custom", onMsg);
    if (observer) observer.disconnect();
    series.removeEventListener("mousemove", hover);
    series.removeEventListener("mouseleave", unhover);
  };
}

export default { render };
