# routilux: set-up, tests and the main job. Every target builds or reuses .venv first.
#   make lab    JupyterLab on notebooks/ (the main job)
#   make test   every test; installs what it needs (venv, Debian chromium)
# See `make help` for the rest.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
LAB_ARGS    ?=

.PHONY: help venv test demo lab notebooks-html soak bench lint clean

help:
	@echo "make lab             JupyterLab on notebooks/ (the main job)"
	@echo "make demo            headless demo: python -m routilux.demo"
	@echo "make test            every test (PYTEST_ARGS='-k foo' to narrow)"
	@echo "make notebooks-html  execute notebooks/*.ipynb into build/html/ (non-zero, naming failures)"
	@echo "make soak            every notebook N times, quiet and beside 2 CPU hogs (N=20)"
	@echo "make bench           benchmarks"
	@echo "make lint            ruff check"
	@echo "make venv            only create/update .venv"
	@echo "make clean           remove build/ and tests/output/"

# The stamp is rebuilt whenever pyproject.toml (or the bootstrap script) changes.
$(STAMP): pyproject.toml scripts/bootstrap.sh
	@bash scripts/bootstrap.sh

venv: $(STAMP)

# pytest exit 5 means "no tests collected": that is a failure here, never a pass.
test: $(STAMP)
	@bash scripts/ensure_chromium.sh
	@rc=0; $(PY) -m pytest -q -ra $(PYTEST_ARGS) tests || rc=$$?; \
	if [ $$rc -eq 5 ]; then \
	  echo "make test: FAILED: pytest collected no tests under tests/ (exit 5)." >&2; \
	  echo "make test: a run that tests nothing must not pass; add tests or fix collection." >&2; \
	  exit 1; \
	fi; \
	exit $$rc

demo: $(STAMP)
	$(PY) -m routilux.demo

# --allow-root: Jupyter refuses to start as root without it (CI and these machines run as root).
lab: $(STAMP)
	$(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS) notebooks/

# Renders every notebook, also after one failed; exits non-zero naming the failed ones.
notebooks-html: $(STAMP)
	@shopt -s nullglob; nbs=(notebooks/*.ipynb); \
	if [ $${#nbs[@]} -eq 0 ]; then echo "make notebooks-html: no notebooks/*.ipynb" >&2; exit 1; fi; \
	$(PY) scripts/notebooks_html.py --output-dir build/html "$${nbs[@]}"

# Every notebook N times with no load, then N times beside 2 CPU-hog processes; pass counts.
N ?= 20
soak: $(STAMP)
	$(PY) scripts/soak.py --runs $(N)

bench: $(STAMP)
	@if [ -f benchmarks/__main__.py ]; then $(PY) -m benchmarks; \
	elif [ -f benchmarks/run_all.py ]; then $(PY) benchmarks/run_all.py; \
	else echo "make bench: no benchmarks/__main__.py or benchmarks/run_all.py yet" >&2; exit 1; fi

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf build tests/output
