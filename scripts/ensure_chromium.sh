#!/usr/bin/env bash
# Make sure Debian's chromium is at /usr/bin/chromium for the browser tests.
#
# Never fails: if chromium cannot be installed, it says why, and writes the reason to
# build/chromium-unavailable.txt, which the `chromium_executable` fixture in
# tests/conftest.py turns into the skip reason of every browser test.
# (Playwright's own browser download is not used: `playwright install` is never run.)
set -uo pipefail

cd "$(dirname "$0")/.."
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
REASON_FILE=build/chromium-unavailable.txt
LOG=build/apt-chromium.log
mkdir -p build

unavailable() {
    echo "ensure_chromium: $1; browser tests will be skipped" >&2
    echo "$1" >"$REASON_FILE"
    exit 0
}

if [ -x "$CHROMIUM" ]; then
    rm -f "$REASON_FILE"
    echo "ensure_chromium: $CHROMIUM is present"
    exit 0
fi

command -v apt-get >/dev/null 2>&1 \
    || unavailable "$CHROMIUM is missing and there is no apt-get to install Debian's chromium"
# As root, or through sudo when it needs no password (it never prompts here).
as_root=()
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        as_root=(sudo -n env DEBIAN_FRONTEND=noninteractive)
    else
        unavailable "$CHROMIUM is missing and installing it needs root (run: sudo apt-get install -y chromium)"
    fi
fi

echo "ensure_chromium: installing Debian's chromium with apt-get${as_root[0]:+ (through sudo)} (log: $LOG)"
export DEBIAN_FRONTEND=noninteractive
# Wait up to 5 minutes for another apt/dpkg run to release its lock instead of failing.
apt_opts=(-q -y -o DPkg::Lock::Timeout=300)
if ! { "${as_root[@]}" apt-get "${apt_opts[@]}" update \
       && "${as_root[@]}" apt-get "${apt_opts[@]}" install chromium; } >"$LOG" 2>&1; then
    tail -n 15 "$LOG" >&2
    unavailable "apt-get install chromium failed (see $LOG)"
fi
[ -x "$CHROMIUM" ] || unavailable "apt-get installed chromium but $CHROMIUM is still missing"
rm -f "$REASON_FILE"
echo "ensure_chromium: installed $("$CHROMIUM" --version 2>/dev/null | head -n 1)"
