#!/usr/bin/env bash
# Installs Open WebUI, pinned, in a venv of its own (outside the project's dependencies), for the
# side-by-side streaming bench (benchmarks/open_webui.py).
#
#   scripts/install-open-webui.sh VENV_DIR
#
# Cold install measured here (2 cores, empty pip cache): 143 s, a 2.9 GB venv (243 packages;
# torch alone 754 MB; 94 wheels came from this machine's local wheel folders, 156 from PyPI).
# open-webui pulls sentence-transformers and accelerate, which need torch: torch==2.13.0 goes in
# first, so pip takes the CPU wheel on this machine's disk instead of a CUDA build of several GB.
# torch is named again beside open-webui, so that pip cannot swap it. A stamp in the venv records
# what was installed; a second run with the same pins does nothing.
set -euo pipefail

venv=${1:?usage: install-open-webui.sh VENV_DIR}
version=0.12.4
torch=2.13.0
pins="open-webui==$version torch==$torch"
stamp="$venv/.openchat-installed"

if [ "$(cat "$stamp" 2>/dev/null)" = "$pins" ]; then
  echo "   open-webui up to date ($venv)"; exit 0
fi

fail() { echo "install-open-webui: $1 (venv: $venv)" >&2; exit 1; }

# A venv left by a failed or older install is started over, so that only the pins are in it.
if [ -f "$venv/pyvenv.cfg" ]; then rm -rf "$venv"; fi
if [ -n "$(ls -A "$venv" 2>/dev/null)" ]; then fail "it exists and is not a venv; not touching it"; fi

start=$SECONDS
echo "   creating the venv $venv"
python3 -m venv "$venv" || fail "python3 -m venv failed"
pip=("$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off)
echo "   installing torch==$torch (CPU build)"
"${pip[@]}" "torch==$torch" || fail "pip could not install torch==$torch"
echo "   installing open-webui==$version and its ~230 dependencies (2-3 minutes)"
"${pip[@]}" "open-webui==$version" "torch==$torch" || fail "pip could not install open-webui==$version"
echo "$pins" >"$stamp"
echo "   open-webui installed in $((SECONDS - start)) s ($(du -sh "$venv" | cut -f1))"
