# Two commands do all set-up on a fresh machine (see README.md):
#   make demo   -> installs into .venv, then runs the main job on the embedded default
#   make test   -> installs into .venv, then runs the linters and the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	# CPU torch first, so pip takes the local CPU wheel instead of a CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/autoprune search

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/pytest
