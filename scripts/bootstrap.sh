#!/usr/bin/env bash
# Create (or reuse) .venv and install the project into it with every extra:
#   python3 -m venv .venv; pip install --upgrade pip; pip install -e '.[jupyter,dask,dev]'
#
# Re-runs are fast: the stamp file .venv/.installed records a hash of pyproject.toml, and
# nothing is reinstalled while it matches (pass --force to reinstall anyway). The Makefile
# calls this script; it also works on its own on a machine without make.
#
# Environment:
#   PYTHON   interpreter to build the venv from (default: python3, needs >= 3.11)
#   VENV     venv folder (default: .venv in the repo root)
set -euo pipefail

cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
EXTRAS='.[jupyter,dask,dev]'
STAMP="$VENV/.installed"
LOG="$VENV/pip-install.log"

force=0
[ "${1:-}" = "--force" ] && force=1

want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$force" = 0 ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] \
    && "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
    echo "bootstrap: $VENV is up to date"
    touch "$STAMP"  # newer than pyproject.toml, so make stops asking
    exit 0
fi

if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "bootstrap: '$PYTHON' not found; install Python >= 3.11 or set PYTHON=/path/to/python3" >&2
    exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "bootstrap: $("$PYTHON" --version 2>&1) is too old; routilux needs Python >= 3.11" \
         "(set PYTHON=/path/to/python3.11 or newer)" >&2
    exit 1
fi

# A venv whose interpreter no longer runs (moved, or built by a Python that is gone) is rebuilt.
if [ -d "$VENV" ] && ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
    echo "bootstrap: $VENV is broken; recreating it"
    rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
    echo "bootstrap: creating $VENV with $("$PYTHON" --version 2>&1)"
    "$PYTHON" -m venv "$VENV"
fi

start=$(date +%s)
echo "bootstrap: installing -e '$EXTRAS' into $VENV (full log: $LOG)"
rm -f "$STAMP"
if ! { "$VENV/bin/python" -m pip install --upgrade pip \
       && "$VENV/bin/python" -m pip install -e "$EXTRAS"; } >"$LOG" 2>&1; then
    echo "bootstrap: pip install FAILED; last lines of $LOG:" >&2
    tail -n 40 "$LOG" >&2
    exit 1
fi
echo "$want" >"$STAMP"
echo "bootstrap: done in $(( $(date +%s) - start )) s"
