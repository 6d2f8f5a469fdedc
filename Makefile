# Two commands do all set-up on a fresh machine (see README.md):
#   make demo   -> installs into .venv, then runs the main job on the embedded default
#   make test   -> installs into .venv, then runs the linters and the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# torchvision needs another torch than .venv's CPU wheel (PyPI's torchvision does not import
# beside it): a second environment, .venv-tv, with torch 2.14.1 + torchvision 0.29.1 (on x86_64
# a CUDA build, run on the CPU) and the project, for the tests marked `torchvision`.
TV_VENV ?= .venv-tv
TV_PYTHON ?= python3.11
TV_PY := $(TV_VENV)/bin/python
TV_STAMP := $(TV_VENV)/.installed
# What the torchvision tests import (pyproject's ranges); the search's own dependencies
# (MLflow, SB3, Optuna, ...) are left out to keep the set-up within CI's time.
TV_DEPS := 'numpy>=1.26' 'torch-pruning>=1.5' 'onnx>=1.16' 'onnxruntime>=1.19' \
	'typer>=0.12' 'rich>=13.7' 'pyyaml>=6.0' pytest

.PHONY: setup demo test lint setup-tv test-tv

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	# CPU torch first, so pip takes the local CPU wheel instead of a CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

$(TV_STAMP): pyproject.toml
	$(TV_PYTHON) -m venv $(TV_VENV)
	$(TV_PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(TV_PY) -m pip install --quiet $(TV_DEPS)
	$(TV_PY) -m pip install --quiet --no-deps -e .
	touch $(TV_STAMP)

setup-tv: $(TV_STAMP)

# Every torchvision classification family through prune, score, ONNX and .apz (one process).
test-tv: setup-tv
	OMP_NUM_THREADS=1 $(TV_VENV)/bin/pytest -m torchvision tests/torchvision -p no:cacheprovider

demo: setup
	$(VENV)/bin/autoprune search

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/pytest
	$(MAKE) test-tv
