#!/usr/bin/env bash
# Creates the virtual environment and installs egosim into it, once. Called by `make eval` and
# `make test`; re-runs only when pyproject.toml changes. Also checks the system libraries that
# headless rendering needs (Mesa EGL / OSMesa) and installs them with apt-get when it can.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.egosim-installed"

# Rendering libraries: MuJoCo's EGL backend on Mesa's software renderer, OSMesa as the fallback.
gl_pkgs=(libegl1 libgl1-mesa-dri libopengl0 libosmesa6)
missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${gl_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing rendering libraries: ${missing[*]}"
    (apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
      || { apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }) \
      || echo "setup: WARNING could not install ${missing[*]}; camera observations will fail (state-only envs still work)"
  else
    echo "setup: WARNING missing rendering libraries: ${missing[*]}"
    echo "       install them with: sudo apt-get install -y --no-install-recommends ${missing[*]}"
  fi
fi

if [ -f "$STAMP" ] && [ "$STAMP" -nt pyproject.toml ]; then
  exit 0
fi
echo "setup: creating $VENV and installing egosim (first run only)"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
# The CPU build of torch first: an unpinned torch would pull several GB of CUDA packages.
"$VENV/bin/python" -m pip install -q "torch==2.13.0"
"$VENV/bin/python" -m pip install -q -e ".[test]"
touch "$STAMP"
echo "setup: done"
