# Two commands set everything up on a fresh machine (only Python 3.10+ and make):
#   make book   build the HTML book on the built-in phantom (or DATA=folder)
#   make test   run every test (unit, reliability, notebooks via nbval, browser)
# Each creates .venv/ and installs the pinned dependencies first. `make help` lists
# every target: a target's line ends with "## what it does", which help prints.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DATA   ?= phantom
RUNS   ?= runs
PYTEST_ARGS ?=
# One intra-op thread per process: the smoke models are tiny, and on a 2-core
# machine shared with a notebook kernel or a second process, torch's spinning
# OpenMP threads made a smoke run 9x slower (15.7 s vs 138.5 s). Override with
# `make book OMP_NUM_THREADS=8` on a big machine.
OMP_NUM_THREADS ?= 1
export OMP_NUM_THREADS

.PHONY: help book test test-fast lab lab-settings venv lint bench clean browser-deps gpu-data

help: ## list the targets, one line each
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/  make \1|\2/' \
	  | awk -F'|' '{ printf "%-20s %s\n", $$1, $$2 }'

venv: $(STAMP) ## create .venv/ with the pinned dependencies and echolib (editable)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (echolib)" >/dev/null
	touch $(STAMP)

book: $(STAMP) ## build the HTML book into _build/html (DATA=phantom or a frames folder, RUNS=runs)
	$(PY) -m echolib book --data $(DATA) --runs $(RUNS)

# JupyterLab settings for this project's venv only (not the user's home): a double
# click opens notebooks/*.py as notebooks (Jupytext), whose kernelspec "python3" is
# the venv's "Python 3 (echolib)" kernel installed above.
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json

lab-settings: $(LAB_SETTINGS) ## install lab/overrides.json into the venv's JupyterLab settings

$(LAB_SETTINGS): lab/overrides.json $(STAMP)
	mkdir -p $(dir $@)
	cp lab/overrides.json $@

# JupyterLab refuses to run as root without being told (containers often are root).
LAB_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: $(LAB_SETTINGS) ## start JupyterLab on this project, notebooks/*.py opening as notebooks
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=$(CURDIR) --ContentsManager.preferred_dir=notebooks $(LAB_ROOT)

# nbval executes the notebooks as .ipynb converted from their Jupytext sources;
# their training runs (and the browser test's book build) share NBRUNS.
NBDIR  := _build/nbval
NBRUNS := $(CURDIR)/_build/test-runs

# The unit tests run in $(TEST_WORKERS) processes (pytest-xdist; a test file stays in one process,
# so module fixtures such as the book build are made once). The notebooks then run under nbval, as
# many at a time (each in its own kernel), reusing the smoke runs the book build trained into
# $(NBRUNS). TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2

test: $(STAMP) $(LAB_SETTINGS) browser-deps lint ## ruff and mypy, then every test: unit, reliability, browser (book, JupyterLab), nbval
	$(PY) -m echolib.pipeline.notebooks $(NBDIR) >/dev/null
	ECHOLIB_RUNS=$(NBRUNS) $(PY) -m pytest tests -n $(TEST_WORKERS) --dist loadfile --durations=30 $(PYTEST_ARGS)
	ECHOLIB_RUNS=$(NBRUNS) $(PY) -m pytest $(NBDIR) --nbval-lax -n $(TEST_WORKERS) --dist loadfile --durations=10 $(PYTEST_ARGS)

# The inner loop: the unit tests without the book build, the browser tests or nbval
# (tests marked slow, browser or book). Under 5 minutes on 2 cores; CI runs `make test`.
test-fast: $(STAMP) ## the quick unit tests only (no book, browser or notebooks), for the inner loop
	$(PY) -m pytest tests -n $(TEST_WORKERS) --dist loadfile -m "not slow and not browser and not book" \
	  --durations=10 $(PYTEST_ARGS)

browser-deps: ## install headless Chromium for the browser tests (Debian packages, needs root)
	@sh .ci/browser-deps.sh

# The lint rules (pyproject.toml's [tool.ruff]) and the type check ([tool.mypy]: its files and the
# per-module exceptions) run first in `make test`: a clean tree is part of passing.
lint: $(STAMP) ## ruff over echolib, tests and bench, then mypy over echolib
	$(PY) -m ruff check echolib tests bench
	$(PY) -m mypy

bench: $(STAMP) ## phantom generation speed (bench/README.md lists the other benchmarks)
	$(PY) bench/phantom_speed.py

# Stage what a lent GPU machine needs for bench/gpu_session.sh: a subset of real
# frames (a device call carries at most 64 MiB) and wheels the device image
# lacks. .gpu-data/ is ignored by git; never commit the (licensed) frames.
GPU_FRAMES ?= ../shared/data/echonet-dynamic-128/frames
GPU_N      ?= 5000
gpu-data: $(STAMP) ## stage real frames and wheels for a lent GPU machine (bench/README.md)
	$(PY) -m echolib.data.subset $(GPU_FRAMES) .gpu-data/frames --n $(GPU_N)
	$(PY) -m pip download --quiet --no-deps --dest .gpu-data/wheels torch-fidelity==0.4.0

clean: ## remove _build/, the runs folder and the phantom cache
	rm -rf _build $(RUNS) .cache
