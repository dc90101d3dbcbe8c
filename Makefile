# The two commands:  `make run`  and  `make test`.
# Both set up .venv first (torch 2.13.0 CPU wheel before the project, so the
# project's torch range is already satisfied and no CUDA packages are pulled).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=
PYTEST_ARGS ?=

.PHONY: install run test test-fast clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test]"
	touch $@

## run: the embedded default experiment (override anything: make run ARGS="env=carracing rule=abcd")
run: install
	$(PY) -m hebbian_es $(ARGS)

## test: the whole suite, unit and end-to-end (what CI runs)
test: install
	$(PY) -m pytest tests -q $(PYTEST_ARGS)

## test-fast: unit tests only
test-fast: install
	$(PY) -m pytest tests -q -m "not slow" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
