# Two commands set everything up on a fresh machine (only Python 3.10+ and make):
#   make book   build the HTML book on the built-in phantom (or DATA=folder)
#   make test   run every test (unit, reliability, notebooks via nbval, browser)
# Each creates .venv/ and installs the pinned dependencies first.

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

.PHONY: book test venv lint bench clean browser-deps gpu-data

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (echolib)" >/dev/null
	touch $(STAMP)

book: $(STAMP)
	$(PY) -m echolib book --data $(DATA) --runs $(RUNS)

# nbval executes the notebooks as .ipynb converted from their Jupytext sources;
# their training runs (and the browser test's book build) share NBRUNS.
NBDIR  := _build/nbval
NBRUNS := $(CURDIR)/_build/test-runs

# The unit tests run in $(TEST_WORKERS) processes (pytest-xdist; a test file stays in one process,
# so module fixtures such as the book build are made once). The notebooks then run one by one under
# nbval, reusing the smoke runs the book build trained into $(NBRUNS). TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2

test: $(STAMP) browser-deps
	$(PY) -m echolib.pipeline.notebooks $(NBDIR) >/dev/null
	ECHOLIB_RUNS=$(NBRUNS) $(PY) -m pytest tests -n $(TEST_WORKERS) --dist loadfile --durations=30 $(PYTEST_ARGS)
	ECHOLIB_RUNS=$(NBRUNS) $(PY) -m pytest $(NBDIR) --nbval-lax --durations=10 $(PYTEST_ARGS)

browser-deps:
	@sh .ci/browser-deps.sh

lint: $(STAMP)
	$(PY) -m ruff check echolib tests bench

bench: $(STAMP)
	$(PY) bench/phantom_speed.py

# Stage what a lent GPU machine needs for bench/gpu_session.sh: a subset of real
# frames (a device call carries at most 64 MiB) and wheels the device image
# lacks. .gpu-data/ is ignored by git; never commit the (licensed) frames.
GPU_FRAMES ?= ../shared/data/echonet-dynamic-128/frames
GPU_N      ?= 5000
gpu-data: $(STAMP)
	$(PY) -m echolib.data.subset $(GPU_FRAMES) .gpu-data/frames --n $(GPU_N)
	$(PY) -m pip download --quiet --no-deps --dest .gpu-data/wheels torch-fidelity==0.4.0

clean:
	rm -rf _build $(RUNS) .cache
