"""Run the complete runtime programs of a Routilux docs tree against this routilux.

The docs are not part of this repository (and the tests run without network), so this is
a script, not a test: point it at a directory holding the docs' ``.rst`` pages (or
extracts of their ``.. code-block:: python`` blocks) and it reports how many programs run
unchanged, with no traceback.

    python scripts/docs_programs.py /path/to/docs/source [--page-imports] [-v]

What counts as a *complete runtime program*: a Python code block that imports from
``routilux``, builds a ``Flow`` (``Flow(`` or ``Flow.deserialize``) and a ``Runtime(``.
Every Python block of a page runs in order, each in its own interpreter, in one scratch
directory per page, because later blocks read files earlier ones wrote (``flow.json``);
only complete runtime programs are counted. ``--page-imports`` prefixes each program with
the ``import`` lines of the page's earlier blocks, for pages whose later blocks lean on an
import shown once above (a reader following the page has it).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

TIMEOUT_S = 60  # seconds per program
_BLOCK = re.compile(r"^(?P<indent>[ \t]*)\.\. code-block:: python[ \t]*$", re.MULTILINE)


@dataclass
class Result:
    page: str
    index: int
    ok: bool
    error: str
    output: str


def code_blocks(text: str) -> list[str]:
    """The bodies of a page's ``.. code-block:: python`` directives, dedented."""
    lines = text.splitlines()
    blocks: list[str] = []
    i = 0
    while i < len(lines):
        m = _BLOCK.match(lines[i])
        if not m:
            i += 1
            continue
        base = len(m.group("indent").expandtabs())
        i += 1
        while i < len(lines) and lines[i].strip().startswith(":"):  # directive options
            i += 1
        body: list[str] = []
        while i < len(lines):
            line = lines[i]
            if line.strip() and len(line) - len(line.lstrip()) <= base:
                break
            body.append(line)
            i += 1
        blocks.append(textwrap.dedent("\n".join(body)).strip("\n") + "\n")
    return blocks


def is_runtime_program(code: str) -> bool:
    imports = re.search(r"^\s*(from routilux|import routilux)", code, re.MULTILINE)
    return bool(imports) and "Runtime(" in code and ("Flow(" in code or "Flow.deserialize" in code)


def import_lines(code: str) -> list[str]:
    return [ln for ln in code.splitlines() if re.match(r"(from \S+ import |import )\S", ln)]


def run_page(path: Path, page_imports: bool, python: str) -> list[Result]:
    blocks = code_blocks(path.read_text(encoding="utf-8"))
    results: list[Result] = []
    seen_imports: list[str] = []
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    with tempfile.TemporaryDirectory(prefix="docs-page-") as cwd:
        for n, code in enumerate(blocks):
            counted = is_runtime_program(code)
            source = code
            if counted and page_imports and seen_imports:
                source = "\n".join(dict.fromkeys(seen_imports)) + "\n" + code
            seen_imports.extend(import_lines(code))
            try:
                proc = subprocess.run(
                    [python, "-c", source], check=False, cwd=cwd, env=env, capture_output=True,
                    text=True, timeout=TIMEOUT_S,
                )
                ok = proc.returncode == 0 and "Traceback (most recent call last)" not in proc.stderr
                err_lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
                error = "" if ok else (err_lines[-1] if err_lines else f"exit {proc.returncode}")
                output = proc.stdout
            except subprocess.TimeoutExpired:
                ok, error, output = False, f"timed out after {TIMEOUT_S} s", ""
            if counted:
                results.append(Result(path.stem, n, ok, error, output))
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("docs", type=Path, help="directory of .rst pages (searched recursively)")
    ap.add_argument("--page-imports", action="store_true",
                    help="prefix each program with the imports of its page's earlier blocks")
    ap.add_argument("--python", default=sys.executable, help="interpreter to run programs with")
    ap.add_argument("-v", "--verbose", action="store_true", help="print each program's output")
    args = ap.parse_args(argv)
    results: list[Result] = []
    for page in sorted(args.docs.rglob("*.rst")):
        results.extend(run_page(page, args.page_imports, args.python))
    for r in results:
        mark = "ok  " if r.ok else "FAIL"
        print(f"{mark} {r.page} block {r.index}" + ("" if r.ok else f": {r.error}"))
        if args.verbose and r.output:
            print(textwrap.indent(r.output.rstrip(), "     | "))
    passed = sum(r.ok for r in results)
    print(f"\n{passed} of {len(results)} complete runtime programs ran with no traceback")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
