# `make demo`: install into .venv/, train the default model (Nanda et al.'s p=113 addition), analyse it,
# and write its explorer (the last line printed is its path).
# `make test`: install into .venv/ and run the test suite (what .ci/run calls).
PY := .venv/bin/python
RUN_DIR ?= checkpoints/add_p113_seed0
THREADS ?= 1
ARGS ?=

.PHONY: setup demo test test-fast bench results

.venv/.mechgrok-installed: pyproject.toml scripts/setup.sh
	bash scripts/setup.sh

setup: .venv/.mechgrok-installed

# The PNG extra (kaleido), installed once; without it the figures are HTML only, and analyze says so in one line.
.venv/.mechgrok-png: .venv/.mechgrok-installed
	$(PY) -m pip install --quiet -e ".[png]" && touch $@ || echo "kaleido not installed: figures as HTML only"

# THREADS: the README's headline numbers hold for one thread (float order depends on the thread count).
# ARGS: more train flags, e.g. make demo ARGS="--steps 8000".
demo: setup .venv/.mechgrok-png
	.venv/bin/mechgrok train --task add --p 113 --threads $(THREADS) --out $(RUN_DIR) $(ARGS)
	.venv/bin/mechgrok analyze $(RUN_DIR) --png
	.venv/bin/mechgrok explore $(RUN_DIR)

test: setup
	$(PY) -m pytest -q

# The fast subset: everything but the tests marked slow (acceptance runs, notebooks).
test-fast: setup
	$(PY) -m pytest -q -m "not slow"

bench: setup
	$(PY) bench/train_speed.py
	$(PY) bench/analyze_speed.py
	$(PY) bench/grok_speed.py
	$(PY) bench/explore_speed.py $(RUN_DIR)

# The committed results root: train (or resume) and analyse the headline run, then publish its report,
# tables, early trajectory and PNG figures to results/add_p113_seed0/. PNGs need Chromium for kaleido
# (Debian: apt-get install chromium).
results: setup .venv/.mechgrok-png
	.venv/bin/mechgrok train --task add --p 113 --threads $(THREADS) --out $(RUN_DIR)
	.venv/bin/mechgrok analyze $(RUN_DIR) --png
	$(PY) scripts/publish_results.py $(RUN_DIR) results/add_p113_seed0
