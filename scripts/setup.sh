#!/usr/bin/env bash
# Create .venv/ in the repo root and install mechgrok with its dev tools and Ray (the sweep tests) into it.
# Torch is installed first and pinned, because an unpinned request pulls a CUDA build
# (gigabytes). With a GPU, set MECHGROK_TORCH to the torch requirement you want, e.g.
#   MECHGROK_TORCH="torch==2.13.0 --index-url <your CUDA wheel index>" make test
set -euo pipefail
cd "$(dirname "$0")/.."
torch_spec=${MECHGROK_TORCH:-torch==2.13.0}
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# shellcheck disable=SC2086  # torch_spec may carry pip options on purpose
.venv/bin/python -m pip install --quiet $torch_spec
.venv/bin/python -m pip install --quiet -e ".[dev,ray]"
touch .venv/.mechgrok-installed
