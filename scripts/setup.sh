#!/usr/bin/env bash
# Create a virtual environment in the repo root (.venv/ by default) and install mechgrok with its dev tools and
# Ray (the sweep tests) into it.
# Torch is installed first and pinned, because an unpinned request pulls a CUDA build
# (gigabytes). With a GPU, set MECHGROK_TORCH to the torch requirement you want, e.g.
#   MECHGROK_TORCH="torch==2.13.0 --index-url <your CUDA wheel index>" make test
# TransformerLens: 3.9 by default (MECHGROK_TL); `make setup-tl4` makes .venv-tl4/ with TransformerLens 4.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${MECHGROK_VENV:-.venv}
torch_spec=${MECHGROK_TORCH:-torch==2.13.0}
tl_spec=${MECHGROK_TL:-transformer-lens>=3.9,<4}
extras=${MECHGROK_EXTRAS:-dev,ray}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
# shellcheck disable=SC2086  # torch_spec may carry pip options on purpose
"$venv/bin/python" -m pip install --quiet $torch_spec
"$venv/bin/python" -m pip install --quiet "$tl_spec" -e ".[$extras]"
touch "$venv/.mechgrok-installed"
