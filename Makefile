# ctloop: the two commands are `make demo` and `make test`; `make help` lists the rest.
#
# Every target that runs Python builds its own virtualenv first (.venv, or .venv-bench for
# the benchmarks) and installs the pinned versions from constraints.txt. The install is
# redone only when pyproject.toml or constraints.txt change (a stamp file tracks them).

SHELL := /bin/bash
.DEFAULT_GOAL := help

# The interpreter the virtualenvs are made from: python3.11 when present, else python3.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null)

VENV := .venv
STAMP := $(VENV)/.ctloop-installed
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.ctloop-installed
EVIDENTLY_VENV := .venv-bench-evidently
EVIDENTLY_STAMP := $(EVIDENTLY_VENV)/.peer-installed
PIP_INSTALL = python -m pip install --quiet --disable-pip-version-check -c constraints.txt

# Extra arguments for pytest, e.g. make test PYTEST_ARGS='-k blobstore -x'
PYTEST_ARGS ?=

# Refuses an interpreter older than 3.11 (or none at all) with a message saying what to do.
define check_python
	@if [ -z "$(1)" ]; then \
		echo "error: no python3 found on PATH; install Python 3.11 or later" \
			"(or run: make PYTHON=/path/to/python3.11 $(MAKECMDGOALS))" >&2; exit 1; \
	fi
	@$(1) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
		echo "error: ctloop needs Python 3.11 or later, but $(1) is" \
			"$$($(1) -V 2>&1 || echo 'not runnable'); install python3.11 or run:" \
			"$(if $(2),rm -rf $(2); )make PYTHON=/path/to/python3.11 $(MAKECMDGOALS)" >&2; \
		exit 1; }
endef

.PHONY: help demo test lint bench lock clean venv

help:
	@echo "make demo   - run the end-to-end demo (creates .venv on first use)"
	@echo "make test   - run the test suite (PYTEST_ARGS='...' passes arguments to pytest)"
	@echo "make lint   - ruff check, ruff format --check, mypy"
	@echo "make bench  - run every bench/*.py against the peers (mlflow, dvc, prefect, evidently) in .venv-bench*"
	@echo "              (BENCH_ARGS=--quick for a smoke run)"
	@echo "make lock   - regenerate constraints.txt from a fresh resolve of .[all,dev]"
	@echo "make clean  - remove the virtualenvs, caches and build output"

# --- environments ----------------------------------------------------------------------------

$(VENV)/bin/python:
	$(call check_python,$(PYTHON),)
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); exit 1; }

$(STAMP): pyproject.toml constraints.txt | $(VENV)/bin/python
	$(call check_python,$(VENV)/bin/python,$(VENV))
	@echo "installing ctloop[all,dev] at the versions pinned in constraints.txt (a minute or two)"
	$(VENV)/bin/$(PIP_INSTALL) -e '.[all,dev]'
	$(VENV)/bin/python -m pip check --disable-pip-version-check
	@touch $@

venv: $(STAMP)

$(BENCH_VENV)/bin/python:
	$(call check_python,$(PYTHON),)
	$(PYTHON) -m venv $(BENCH_VENV) || { rm -rf $(BENCH_VENV); exit 1; }

# ctloop goes in with its pins first; the peers follow unpinned (they are not ctloop's
# dependencies, and mlflow caps packages such as pyarrow and cryptography below our pins), so
# pip moves a shared package only where a peer needs it. Both then run in the same env.
BENCH_PEERS ?= 'mlflow>=3,<4' 'dvc>=3' 'prefect>=3,<4'
$(BENCH_STAMP): pyproject.toml constraints.txt | $(BENCH_VENV)/bin/python
	$(call check_python,$(BENCH_VENV)/bin/python,$(BENCH_VENV))
	@echo "installing ctloop[all] (pinned) and $(BENCH_PEERS) into $(BENCH_VENV) (a few minutes)"
	$(BENCH_VENV)/bin/$(PIP_INSTALL) -e '.[all]'
	$(BENCH_VENV)/bin/python -m pip install --quiet --disable-pip-version-check $(BENCH_PEERS)
	@touch $@

# Evidently 0.7 does not import with pandas 3 (ctloop's pin), so bench/drift.py runs it in
# an environment of its own, without ctloop: Evidently and what its helper script reads.
EVIDENTLY_PEER ?= 'evidently>=0.7,<0.8' 'pandas<3' numpy scipy pyarrow psutil
$(EVIDENTLY_VENV)/bin/python:
	$(call check_python,$(PYTHON),)
	$(PYTHON) -m venv $(EVIDENTLY_VENV) || { rm -rf $(EVIDENTLY_VENV); exit 1; }

$(EVIDENTLY_STAMP): | $(EVIDENTLY_VENV)/bin/python
	$(call check_python,$(EVIDENTLY_VENV)/bin/python,$(EVIDENTLY_VENV))
	@echo "installing $(EVIDENTLY_PEER) into $(EVIDENTLY_VENV) (a minute or two)"
	$(EVIDENTLY_VENV)/bin/python -m pip install --quiet --disable-pip-version-check $(EVIDENTLY_PEER)
	@touch $@

# --- the commands ----------------------------------------------------------------------------

demo: $(STAMP)
	$(VENV)/bin/python -m ctloop demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# Python only: ruff would also reformat the code blocks of the Markdown docs.
LINT_PATHS = $(wildcard src tests scripts bench examples)
lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/mypy

# Runs every bench/*.py (helpers named _*.py are skipped), all of them even when one fails.
# BENCH_ARGS goes to each script, e.g. make bench BENCH_ARGS=--quick for a smoke run.
BENCH_ARGS ?=
bench: $(BENCH_STAMP) $(EVIDENTLY_STAMP)
	@failed=""; found=0; \
	for script in bench/*.py; do \
		[ -f "$$script" ] || continue; \
		case "$$(basename "$$script")" in _*) continue;; esac; \
		found=1; \
		echo "== $$script"; \
		$(BENCH_VENV)/bin/python "$$script" $(BENCH_ARGS) || failed="$$failed $$script"; \
	done; \
	if [ "$$found" = 0 ]; then echo "no benchmarks found in bench/"; fi; \
	if [ -n "$$failed" ]; then echo "error: failed:$$failed" >&2; exit 1; fi

lock:
	$(call check_python,$(PYTHON),)
	$(PYTHON) scripts/lock.py

clean:
	rm -rf $(VENV) $(BENCH_VENV) $(EVIDENTLY_VENV) build dist .pytest_cache .mypy_cache .ruff_cache bench/.work
	find src tests bench scripts -name __pycache__ -type d -prune -exec rm -rf {} + 2>/dev/null || true
	find src -name '*.egg-info' -type d -prune -exec rm -rf {} + 2>/dev/null || true
