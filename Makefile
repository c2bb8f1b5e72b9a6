# Two commands do all set-up: `make run` and `make test`. Both create .venv (the project's own
# virtual environment) and install the project into it on first use. The venv matters: the
# import names `actors`, `supervision` and `strategies` are also unrelated packages on PyPI
# (`supervision` is a computer-vision library), so never install this into a shared
# environment where one of those may already live.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
ARGS   ?=

.PHONY: run test lint bench chaos clean

$(STAMP): setup.cfg pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "trade-conductor needs Python >= 3.11, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

run: $(STAMP)  ## trade BTC/USDT and ETH/USDT on the embedded simulator (Ctrl-C stops)
	$(BIN)/python -m supervision.main --pairs BTC/USDT,ETH/USDT $(ARGS)

test: $(STAMP)  ## lint, type-check the cores, run every test
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

bench: $(STAMP)  ## benchmarks (not part of the tests)
	$(BIN)/python -m bench $(ARGS)

chaos: $(STAMP)  ## crash-safety suite: SIGKILL rounds under exchange faults, then a clean run
	$(BIN)/python -m bench.chaos $(ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
