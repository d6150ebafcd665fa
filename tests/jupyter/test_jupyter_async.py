"""routilux_jupyter.run_sync: asyncio.run with no loop, nest_asyncio2 (lazily) inside one.

The running-loop cases run in a subprocess: nest_asyncio2 patches asyncio process-wide, and
the rest of the suite must not inherit that.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import pytest

from routilux_jupyter import run_sync


async def add(a: int, b: int) -> int:
    await asyncio.sleep(0)
    return a + b


def run_python(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.timeout(30)
def test_without_a_running_loop_it_is_asyncio_run() -> None:
    assert run_sync(add(1, 2)) == 3


@pytest.mark.timeout(30)
def test_exceptions_propagate() -> None:
    async def boom() -> None:
        raise KeyError("inner")

    with pytest.raises(KeyError, match="inner"):
        run_sync(boom())


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("value", "match"),
    [(add, r"got function \(call it: run_sync\(f\(\)\), not run_sync\(f\)\)"), (3, "got int")],
)
def test_not_awaitable_is_a_type_error(value: object, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        run_sync(value)  # type: ignore[arg-type]


@pytest.mark.timeout(90)
def test_inside_a_running_loop_nest_asyncio2_is_applied_lazily() -> None:
    out = run_python(
        """
        import asyncio, sys
        import routilux, routilux_jupyter
        from routilux_jupyter import run_sync
        assert "nest_asyncio2" not in sys.modules, "imported too early"

        async def inner():
            await asyncio.sleep(0.01)
            return "inner done"

        async def cell():  # what a notebook cell is: code inside a running loop
            try:
                asyncio.run(inner())
            except RuntimeError as exc:
                refused = "cannot be called from a running event loop" in str(exc)
            return refused, run_sync(inner())

        refused, result = asyncio.run(cell())
        print(refused, result, "nest_asyncio2" in sys.modules)
        """
    )
    assert out == "True inner done True"


@pytest.mark.timeout(90)
def test_inside_a_running_loop_without_nest_asyncio2_names_it() -> None:
    out = run_python(
        """
        import asyncio, sys
        sys.modules["nest_asyncio2"] = None
        from routilux_jupyter import run_sync

        async def cell():
            try:
                run_sync(asyncio.sleep(0))
            except ImportError as exc:
                return str(exc)

        print(asyncio.run(cell()))
        """
    )
    assert "needs nest-asyncio2>=1.6" in out and "top-level await" in out


@pytest.mark.timeout(60)
def test_await_runtime_and_jobs_needs_nothing_from_here() -> None:
    from jupyter_helpers import make_flow

    from routilux import Runtime

    flow = make_flow()

    async def main() -> bool:
        with Runtime(thread_pool_size=2) as rt:
            rt.post(flow.flow_id, "work", "in", {})
            return await rt.wait_async(timeout=30)

    assert run_sync(main()) is True
