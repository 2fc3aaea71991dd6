# `make demo`: install into .venv/, train the default model (Nanda et al.'s p=113 addition), analyse it.
# `make test`: install into .venv/ and run the test suite (what .ci/run calls).
PY := .venv/bin/python
RUN_DIR ?= checkpoints/add_p113_seed0

.PHONY: setup demo test bench figures

.venv/.mechgrok-installed: pyproject.toml scripts/setup.sh
	bash scripts/setup.sh

setup: .venv/.mechgrok-installed

demo: setup
	.venv/bin/mechgrok train --task add --p 113 --out $(RUN_DIR)
	.venv/bin/mechgrok analyze $(RUN_DIR)

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/train_speed.py
	$(PY) bench/analyze_speed.py
	$(PY) bench/grok_speed.py

# Redraw figures/*.png from the committed analysis in results/add_p113_seed0 (no checkpoints needed).
# Needs Chromium for kaleido: apt-get install chromium (Debian).
figures: setup
	$(PY) -m pip install --quiet -e ".[png]"
	$(PY) scripts/make_figures.py results/add_p113_seed0 figures
