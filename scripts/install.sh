#!/usr/bin/env bash
# One-command set-up on a fresh Debian 12 machine: system GL/EGL libraries (headless rendering, opencv),
# a virtual environment in .venv, and hmr-fit with its test extras. Re-running it is safe.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    python3-venv libegl1 libegl-mesa0 libgl1-mesa-dri libgl1 libglib2.0-0 libgles2 ffmpeg >/dev/null
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test,ray]"
.venv/bin/python -c "import hmr_fit, torch; print('hmr-fit', hmr_fit.__version__, '| torch', torch.__version__)"
