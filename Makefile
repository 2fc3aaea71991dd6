# `make demo`: install into .venv/, train the default model (Nanda et al.'s p=113 addition), analyse it,
# and write its explorer (the last line printed is its path).
# `make test`: install into .venv/ and run the test suite (what .ci/run calls, with `make test-tl4`).
# `make test-tl4`: install into .venv-tl4/ with TransformerLens 4 and run the tests that build its model.
PY := .venv/bin/python
RUN_DIR ?= checkpoints/add_p113_seed0
THREADS ?= 1
ARGS ?=

.PHONY: setup setup-tl4 demo test test-fast test-tl4 bench results docs

.venv/.mechgrok-installed: pyproject.toml scripts/setup.sh
	bash scripts/setup.sh

setup: .venv/.mechgrok-installed

.venv-tl4/.mechgrok-installed: pyproject.toml scripts/setup.sh
	MECHGROK_VENV=.venv-tl4 MECHGROK_TL="transformer-lens>=4,<5" MECHGROK_EXTRAS=dev bash scripts/setup.sh

setup-tl4: .venv-tl4/.mechgrok-installed

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

# Under TransformerLens 4 (TransformerBridge): every test that builds the hooked model, the slow ones aside.
test-tl4: setup-tl4
	.venv-tl4/bin/python -m pytest -q -m "hooked and not slow"

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
	$(PY) scripts/sync_results.py

# The docs site (docs/, mkdocs-material, the API reference from the docstrings) into site/; --strict: a broken link
# or a missing page is an error. Results pages quote results/<study>/README.md, refreshed by scripts/sync_results.py.
docs: setup
	$(PY) scripts/sync_results.py
	.venv/bin/mkdocs build --strict
