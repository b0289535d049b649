#!/usr/bin/env bash
# Creates the virtual environment and installs egosim into it, once. Called by `make eval` and
# `make test`; re-runs only when pyproject.toml changes. Also checks the system libraries that
# headless rendering needs (Mesa EGL / OSMesa) and installs them with apt-get when it can.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.egosim-installed"

# System packages, each group installed on its own so one failure does not block the other:
# MuJoCo's EGL backend on Mesa's software renderer (OSMesa as the fallback), needed for cameras;
# chromium, for the test that opens the HTML report headless (skipped without it).
ensure_debs() {  # $1: what breaks without them; the rest: package names
  local why="$1"; shift
  local missing=()
  command -v dpkg-query >/dev/null 2>&1 || return 0
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${missing[*]}"
    (apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
      || { apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }) \
      || echo "setup: WARNING could not install ${missing[*]}; $why"
  else
    echo "setup: WARNING missing ${missing[*]}; $why"
    echo "       install with: sudo apt-get install -y --no-install-recommends ${missing[*]}"
  fi
}
ensure_debs "camera observations will fail (state-only envs still work)" libegl1 libgl1-mesa-dri libopengl0 libosmesa6
ensure_debs "the test that opens the HTML report in a browser is skipped" chromium

if [ -f "$STAMP" ] && [ "$STAMP" -nt pyproject.toml ]; then
  exit 0
fi
echo "setup: creating $VENV and installing egosim (first run only)"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
# The CPU build of torch first: an unpinned torch would pull several GB of CUDA packages.
"$VENV/bin/python" -m pip install -q "torch==2.13.0"
"$VENV/bin/python" -m pip install -q -e ".[test]"
# The real openpi client, for the remote-policy tests: it declares numpy<2 but works on numpy 2, so
# without its dependencies (websockets and msgpack come from egosim's test extra).
"$VENV/bin/python" -m pip install -q --no-deps "openpi-client>=0.1"
touch "$STAMP"
echo "setup: done"
