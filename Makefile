# The two commands:  `make run`  and  `make test`.
# Both set up .venv first (torch 2.13.0 CPU wheel before the project, so the
# project's torch range is already satisfied and no CUDA packages are pulled).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=
PYTEST_ARGS ?=

.PHONY: install run test test-fast slurm-start slurm-stop clean

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

## test: the whole suite, unit, end-to-end and SLURM (what CI runs). Starts the local
## single-node SLURM cluster (as root; docs/slurm.md), runs pytest, then always stops the
## cluster (also on Ctrl-C) and exits with pytest's exit code.
test: install
	./scripts/slurm/start-cluster.sh && { \
	  trap './scripts/slurm/stop-cluster.sh' EXIT; trap 'exit 130' INT; trap 'exit 143' TERM; \
	  HEBBIAN_ES_REQUIRE_SLURM=1 $(PY) -m pytest tests -q $(PYTEST_ARGS); rc=$$?; exit $$rc; }

## test-fast: unit tests only (no slow end-to-end tests, no SLURM)
test-fast: install
	$(PY) -m pytest tests -q -m "not slow and not slurm" $(PYTEST_ARGS)

## slurm-start / slurm-stop: the local single-node SLURM cluster (docs/slurm.md)
slurm-start:
	./scripts/slurm/start-cluster.sh

slurm-stop:
	./scripts/slurm/stop-cluster.sh

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
