"""``%routilux`` / ``%%routilux``: thin argument parsing, then the public API.

One magic family with subcommands, each parsed by its own IPython ``magic_arguments``
parser; ``%routilux?`` shows all of them. Every bad argument becomes a ``UsageError``,
which IPython prints as one line (no traceback).
"""

from __future__ import annotations

import os
import weakref
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from routilux import Runtime, latest_runtime
from routilux.monitoring import MonitoringRegistry
from routilux.trace import Tracer

from ._findings import DiagnosticsUnavailable, finding_dicts, findings_html, findings_text
from ._findings import run_diagnose as _run_diagnose

__all__ = ["RoutiluxMagics", "load", "unload"]

SUBCOMMANDS = ("monitor", "trace", "doctor", "export", "tune")
TRACE_WAIT_S = 60.0  # seconds %%routilux trace waits for the cell's jobs before reporting
PERFETTO = "https://ui.perfetto.dev"


@magic_arguments(name="routilux monitor")
@argument(
    "runtime",
    nargs="?",
    metavar="RUNTIME",
    help="a Runtime variable of the notebook (default: the most recently created runtime)",
)
@argument("--interval", type=float, default=0.1, metavar="S",
          help="seconds between updates (default 0.1: at most 10 a second)")  # fmt: skip
@argument("--window", type=float, default=30.0, metavar="S",
          help="seconds of history shown (default 30)")  # fmt: skip
def _monitor_args() -> None:
    """Show the live dashboard of a runtime: pool timeline, queue, locks, counters, findings.

    It keeps updating while other cells run. Running it again for the same runtime replaces
    the previous dashboard. Get it as an object with routilux_jupyter.dashboards()[-1].
    """


@magic_arguments(name="%routilux trace")  # the usage line reads %%routilux trace
@argument("--pool", type=int, metavar="N",
          help="provide a fresh Runtime(thread_pool_size=N, trace=True) named `runtime` in "
               "the notebook for the cell to use")  # fmt: skip
@argument("--timeout", type=float, default=TRACE_WAIT_S, metavar="S",
          help=f"seconds to wait for the cell's jobs to finish before the report "
               f"(default {TRACE_WAIT_S:g})")  # fmt: skip
@argument("--no-diagnose", action="store_true",
          help="skip routilux.diagnostics in the report")  # fmt: skip
def _trace_args() -> None:
    """(cell magic) Run the cell with tracing on, then show the static report.

    Every Runtime the cell creates or posts to records a trace while the cell runs
    (routilux.monitoring.MonitoringRegistry); the report covers the one that recorded
    most, and %routilux export / doctor afterwards default to it. With --pool N the cell
    gets a fresh Runtime named `runtime`. The report (matplotlib charts and findings) also
    shows in notebooks viewed without a kernel.
    """


@magic_arguments(name="routilux doctor")
@argument("runtime", nargs="?", metavar="RUNTIME",
          help="a Runtime (or Tracer) variable (default: the last %%%%routilux trace runtime, "
               "else the most recent runtime)")  # fmt: skip
def _doctor_args() -> None:
    """Findings so far (routilux.diagnostics), each with its fix and the notebook that
    explains it."""


@magic_arguments(name="routilux export")
@argument("path", metavar="PATH", help="file to write, e.g. trace.json")
@argument("runtime", nargs="?", metavar="RUNTIME",
          help="a Runtime or Tracer variable (default: the last %%%%routilux trace runtime, "
               "else the most recent runtime)")  # fmt: skip
def _export_args() -> None:
    """Write the current trace as Chrome Trace Event JSON: open it in
    https://ui.perfetto.dev or chrome://tracing."""


@magic_arguments(name="routilux tune")
@argument("flow", nargs="?", metavar="FLOW",
          help="a flow name, or a notebook variable holding a Flow or a "
               "factory(size) -> (runtime, flow)")  # fmt: skip
@argument("routine", nargs="?", metavar="ROUTINE", help="the entry routine to post to")
@argument("slot", nargs="?", metavar="SLOT", help="its slot")
@argument("--auto", action="store_true",
          help="instead of a sweep: switch a live runtime (--apply-to, default the most "
               "recently created) to automatic sizing, as thread_pool_size='auto'; it "
               "adjusts the size while jobs run and records each change with its reason "
               "(trace kind pool.autosize); a later resize(n) turns it off")  # fmt: skip
@argument("--sizes", default="1,2,4,8", metavar="N,N,...",
          help="pool sizes to try, comma-separated (default 1,2,4,8)")  # fmt: skip
@argument("--jobs", type=int, default=40, metavar="N", help="jobs per size (default 40)")
@argument("--rate", type=float, metavar="R",
          help="post R jobs per second (default: all at once)")  # fmt: skip
@argument("--data", metavar="VAR",
          help="a notebook variable: a dict posted each time, or make_data(i) -> dict "
               "(default: {'i': i})")  # fmt: skip
@argument("--latency-target", type=float, metavar="S",
          help="a p95 job latency target in seconds for the recommendation")  # fmt: skip
@argument("--apply-to", metavar="RUNTIME",
          help="a Runtime variable the Apply button resizes (default: the most recently "
               "created runtime, if any)")  # fmt: skip
@argument("--wait", action="store_true",
          help="block until the sweep ends (default: it runs in the background)")  # fmt: skip
def _tune_args() -> None:
    """Sweep pool sizes for a flow and recommend one: a fresh traced Runtime per size,
    throughput and latency per size, the replay of the first size's trace at every size
    (routilux.tuning.simulate), and an Apply button that resizes a live runtime.

    Returns the routilux_jupyter.Tuner, which displays as the widget:
    tuner = %routilux tune ... keeps it (tuner.frame, tuner.recommendation).
    %routilux tune --auto [--apply-to RUNTIME] sizes the runtime online instead.
    """


_PARSERS = {
    "monitor": _monitor_args,
    "trace": _trace_args,
    "doctor": _doctor_args,
    "export": _export_args,
    "tune": _tune_args,
}

_HELP = """Watch and diagnose routilux runtimes from a notebook.

  %routilux monitor [RUNTIME]       live dashboard of a runtime
  %%routilux trace [--pool N]       run the cell traced, then show a static report
  %routilux doctor [RUNTIME]        findings so far, with fixes and notebooks
  %routilux export PATH [RUNTIME]   Chrome/Perfetto trace JSON of the current trace
  %routilux tune FLOW ROUTINE SLOT  sweep pool sizes, recommend one, apply it

RUNTIME is the name of a variable in the notebook.
"""


def _full_help() -> str:
    parts = [_HELP]
    for name in SUBCOMMANDS:
        parts.append(f"{'-' * 70}\n{_PARSERS[name].parser.format_help()}")
    return "\n".join(parts)


def _parse(sub: str, rest: str) -> Any:
    magic = "%%routilux" if sub == "trace" else "%routilux"
    try:
        return parse_argstring(_PARSERS[sub], rest)
    except UsageError as exc:
        raise UsageError(f"{magic} {sub}: {exc} (see %routilux?)") from None
    except ValueError as exc:  # unbalanced quotes in the argument string
        raise UsageError(f"{magic} {sub}: {exc} (see %routilux?)") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


@magics_class
class RoutiluxMagics(Magics):
    """The ``%routilux`` magics; registered by ``%load_ext routilux_jupyter``."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        # the last %%routilux trace: its runtime (weakly) and the tracer that recorded it,
        # which outlives tracing that only the magic had switched on
        self._traced: tuple[weakref.ref[Runtime] | None, Tracer] | None = None
        self._monitors: list[Any] = []  # dashboards this magic opened (to replace on re-run)

    @line_cell_magic
    def routilux(self, line: str, cell: str | None = None) -> Any:
        sub, _, rest = line.strip().partition(" ")
        if not sub:
            raise UsageError(
                "missing subcommand: %routilux monitor|doctor|export|tune ... or "
                "%%routilux trace (see %routilux?)"
            )
        if sub not in _PARSERS:
            raise UsageError(
                f"unknown subcommand {sub!r}; choose one of {', '.join(SUBCOMMANDS)} "
                f"(see %routilux?)"
            )
        if cell is not None and sub != "trace":
            raise UsageError(f"%%routilux {sub} does not take a cell; only %%routilux trace does")
        args = _parse(sub, rest)
        if sub == "trace":
            if cell is None:
                raise UsageError(
                    "trace runs a cell: put %%routilux trace [--pool N] on the first line of "
                    "the cell"
                )
            return self._trace(args, cell)
        return getattr(self, f"_{sub}")(args)

    routilux.__doc__ = _full_help()

    # -- finding the runtime ---------------------------------------------------------------

    def _variable(self, name: str, kinds: tuple[type, ...]) -> Any:
        ns = self.shell.user_ns
        if not name.isidentifier():
            raise UsageError(f"RUNTIME must be a variable name, got {name!r}")
        if name not in ns:
            names = sorted(k for k, v in ns.items() if isinstance(v, kinds) and k[:1] != "_")
            there = f"runtimes there: {', '.join(names)}" if names else "it holds no Runtime"
            raise UsageError(f"no variable {name!r} in the notebook; {there}")
        value = ns[name]
        if not isinstance(value, kinds):
            wanted = " or ".join(k.__name__ for k in kinds)
            raise UsageError(f"{name!r} is a {type(value).__name__}, not a routilux {wanted}")
        return value

    def _default_runtime(self, prefer_traced: bool) -> Any:
        """The runtime to use; with ``prefer_traced``, what the last trace recorded: its
        runtime while it still records into that tracer, else the tracer itself."""
        if prefer_traced and self._traced is not None:
            ref, tracer = self._traced
            traced = ref() if ref is not None else None
            if traced is not None and traced.tracer is tracer:
                return traced
            return tracer
        runtime = latest_runtime()
        if runtime is None:
            raise UsageError(
                "no live routilux Runtime: create one (runtime = Runtime(trace=True)) or name "
                "it, e.g. %routilux monitor runtime"
            )
        return runtime

    # -- subcommands ---------------------------------------------------------------------

    def _monitor(self, args: Any) -> None:
        from IPython.display import display

        from ._dashboard import Dashboard

        runtime = (
            self._variable(args.runtime, (Runtime,))
            if args.runtime
            else self._default_runtime(prefer_traced=False)
        )
        for old in [d for d in self._monitors if d.runtime is runtime]:
            old.close()
        self._monitors = [d for d in self._monitors if not d.closed]
        try:
            dashboard = Dashboard(runtime, interval_s=args.interval, window_s=args.window)
        except (ImportError, ValueError) as exc:
            raise UsageError(f"%routilux monitor: {_one_line(exc)}") from None
        self._monitors.append(dashboard)
        display(dashboard)

    def _traced_runtimes(self, session: int | None = None) -> dict[int, tuple[Any, Tracer]]:
        """id(tracer) -> (runtime or None, tracer): notebook variables, the latest runtime
        and (with ``session``) what monitoring traced since it began."""
        found: dict[int, tuple[Any, Tracer]] = {}
        candidates: list[Any] = list(self.shell.user_ns.values())
        candidates.append(latest_runtime())
        for value in candidates:
            if isinstance(value, Runtime) and value.tracer is not None:
                found[id(value.tracer)] = (value, value.tracer)
        if session is not None:
            for runtime, tracer in MonitoringRegistry.traced(since=session):
                found.setdefault(id(tracer), (runtime, tracer))
        return found

    def _trace(self, args: Any, cell: str) -> None:
        from IPython.display import display

        from ._report import report

        if args.pool is not None and args.pool < 1:
            raise UsageError(f"%%routilux trace: --pool must be >= 1, got {args.pool}")
        if args.timeout < 0:
            raise UsageError(f"%%routilux trace: --timeout must be >= 0, got {args.timeout:g}")
        created = None
        if args.pool is not None:
            previous = self.shell.user_ns.get("runtime")
            created = Runtime(thread_pool_size=args.pool, trace=True)
            self.shell.user_ns["runtime"] = created
            if isinstance(previous, Runtime) and not previous.is_shut_down:
                print(
                    f"%%routilux trace: `runtime` is now a new Runtime(thread_pool_size="
                    f"{args.pool}, trace=True); the one it named before is still running"
                )
        before = {key: tracer.last_seq for key, (_, tracer) in self._traced_runtimes().items()}
        # Runtimes the cell creates, or posts to, trace while it runs (and until the report).
        session = None if MonitoringRegistry.is_enabled() else MonitoringRegistry.enable()
        try:
            self.shell.run_cell(cell)
            if created is not None:
                target, tracer = created, created.tracer
            else:
                target, tracer, best = None, None, 0
                for key, (runtime, tr) in self._traced_runtimes(session).items():
                    new = tr.last_seq - before.get(key, 0)
                    if new > best:
                        target, tracer, best = runtime, tr, new
            if tracer is None:
                raise UsageError(
                    "%%routilux trace: the cell ran, but no traced runtime recorded anything: "
                    "it posted no job to a Runtime (every runtime the cell creates or posts "
                    "to is traced while it runs)"
                )
            if target is not None:
                self._traced = (weakref.ref(target), tracer)
                if not target.is_shut_down and not target.wait_until_all_jobs_finished(
                        args.timeout):
                    print(
                        f"%%routilux trace: jobs still running after {args.timeout:g} s; the "
                        f"report shows what happened so far"
                    )
            source = target if target is not None and target.tracer is tracer else tracer
            shown = report(source, diagnose=not args.no_diagnose, title="%%routilux trace")
        finally:
            if session is not None:
                MonitoringRegistry.disable()
        if target is None:  # collected already: keep what it recorded for export/doctor
            self._traced = (None, tracer)
        display(shown)

    def _doctor(self, args: Any) -> None:
        from IPython.display import display

        source = (
            self._variable(args.runtime, (Runtime, Tracer))
            if args.runtime
            else self._default_runtime(prefer_traced=True)
        )
        try:
            findings = finding_dicts(_run_diagnose(source, record=True))
        except DiagnosticsUnavailable as exc:
            raise UsageError(f"%routilux doctor: {_one_line(exc)}") from None
        display(
            {"text/plain": findings_text(findings), "text/html": findings_html(findings)},
            raw=True,
        )

    def _export(self, args: Any) -> None:
        source = (
            self._variable(args.runtime, (Runtime, Tracer))
            if args.runtime
            else self._default_runtime(prefer_traced=True)
        )
        tracer = source if isinstance(source, Tracer) else source.tracer
        if tracer is None:
            raise UsageError(
                "%routilux export: this runtime records no trace; create it with "
                "Runtime(trace=True) or run the cell under %%routilux trace"
            )
        path = os.path.expanduser(args.path)
        try:
            trace = tracer.to_chrome_trace(path)
        except OSError as exc:
            raise UsageError(
                f"%routilux export: cannot write {path}: {exc.strerror or exc}"
            ) from None
        count = sum(1 for e in trace["traceEvents"] if e.get("ph") != "M")
        dropped = trace["otherData"].get("dropped", 0)
        lost = f" ({dropped} older events were dropped)" if dropped else ""
        print(f"wrote {count} trace events to {path}{lost}; open it in {PERFETTO}")

    def _tune(self, args: Any) -> Any:
        if args.auto:
            return self._tune_auto(args)
        if args.flow is None or args.routine is None or args.slot is None:
            raise UsageError(
                "%routilux tune: the following arguments are required: FLOW, ROUTINE, SLOT "
                "(or --auto to switch a runtime to automatic sizing)"
            )
        from ._tuner import Tuner

        try:
            sizes = [int(part) for part in args.sizes.replace(" ", "").split(",") if part]
        except ValueError:
            raise UsageError(
                f"%routilux tune: --sizes must be comma-separated ints, e.g. 1,2,4,8; got "
                f"{args.sizes!r}"
            ) from None
        if not sizes or min(sizes) < 1 or len(set(sizes)) != len(sizes):
            raise UsageError(
                f"%routilux tune: --sizes must be distinct ints >= 1, got {args.sizes!r}"
            )
        if args.jobs < 1:
            raise UsageError(f"%routilux tune: --jobs must be >= 1, got {args.jobs}")
        if args.rate is not None and args.rate <= 0:
            raise UsageError(f"%routilux tune: --rate must be > 0, got {args.rate:g}")
        if args.latency_target is not None and args.latency_target <= 0:
            raise UsageError(
                f"%routilux tune: --latency-target must be > 0, got {args.latency_target:g}"
            )
        workload: Any = args.flow
        value = self.shell.user_ns.get(args.flow) if args.flow.isidentifier() else None
        if value is not None and (hasattr(value, "flow_id") or callable(value)):
            workload = value
        make_data = None
        if args.data is not None:
            make_data = self._variable_value(args.data, "--data")
            if not (isinstance(make_data, dict) or callable(make_data)):
                raise UsageError(
                    f"%routilux tune: --data {args.data} is a {type(make_data).__name__}; it "
                    "must be a dict or a function make_data(i) -> dict"
                )
        runtime = (self._variable(args.apply_to, (Runtime,)) if args.apply_to
                   else latest_runtime())
        tuner = Tuner(workload, args.routine, args.slot, make_data, sizes, args.jobs,
                      rate=args.rate, latency_target_s=args.latency_target, runtime=runtime)
        if args.wait:
            tuner.wait()
        return tuner

    def _tune_auto(self, args: Any) -> None:
        if args.flow is not None:
            raise UsageError(
                "%routilux tune --auto sizes a runtime while it runs and takes no FLOW "
                "ROUTINE SLOT; name the runtime with --apply-to RUNTIME"
            )
        runtime = (self._variable(args.apply_to, (Runtime,)) if args.apply_to
                   else latest_runtime())
        if runtime is None:
            raise UsageError(
                "%routilux tune --auto: no live runtime; create one, or pass --apply-to RUNTIME"
            )
        try:
            runtime.resize("auto")
        except RuntimeError as exc:  # the shared pool, or shut down
            raise UsageError(f"%routilux tune --auto: {_one_line(exc)}") from None
        stats = runtime.statistics()
        print(
            f"automatic pool sizing on: {stats.pool_size} threads now, between 1 and "
            f"max_pool_size {runtime.max_pool_size}; each change and its reason goes to the "
            "trace (pool.autosize), the latest decision to statistics().pool_auto_reason; "
            "resize(n) turns it off"
        )

    def _variable_value(self, name: str, option: str) -> Any:
        if not name.isidentifier() or name not in self.shell.user_ns:
            raise UsageError(f"%routilux tune: {option} {name}: no such variable in the notebook")
        return self.shell.user_ns[name]


_ROUTED: list[Any] = []  # the RoutedStdout load() installed (unload() removes only that)


def load(ipython: Any) -> None:
    """Register the magics on ``ipython``, and route ``print()`` in logic by job.

    With routilux's RoutedStdout in place, text a routine's logic prints (on a pool
    thread) appears under the cell that posted its job, not under whichever cell runs
    when it prints (ipykernel 7 places a thread's output by its parent header), and
    ``routilux.get_job_output(job_id)`` returns it per job.
    """
    import sys

    from routilux import RoutedStdout, install_routed_stdout

    ipython.register_magics(RoutiluxMagics)
    if not isinstance(sys.stdout, RoutedStdout):
        _ROUTED.append(install_routed_stdout(keep_default=True))


def unload(ipython: Any) -> None:
    """Stop every dashboard's pump and remove the magics."""
    from ._dashboard import stop_all

    stop_all()
    if _ROUTED:
        from routilux import uninstall_routed_stdout
        from routilux.core.output import get_routed_stdout

        if get_routed_stdout() is _ROUTED[-1]:
            uninstall_routed_stdout()
        _ROUTED.clear()
    manager = ipython.magics_manager
    for kind in ("line", "cell"):
        manager.magics[kind].pop("routilux", None)
    manager.registry.pop(RoutiluxMagics.__name__, None)
