# Every install goes through constraints.txt: it pins torch to the local CPU
# wheel, so no command here pulls several GB of CUDA packages.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP_INSTALL := $(BIN)/python -m pip install -q -c constraints.txt

.PHONY: setup demo test check test-slow fuzz bench docs clean

$(BIN)/expresso: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -e '.[dev]'
	touch $@

setup: $(BIN)/expresso

demo: setup
	$(BIN)/expresso train examples/digits/configs/experiments/digits_mlp.yaml

# The suite starts ~100 Python processes: with bytecode caching on (an empty PYTHONDONTWRITEBYTECODE
# turns off a machine-wide 1), each reads expresso's compiled modules instead of compiling them again.
# Static checks first (about 30 s): lint and format (ruff), the layer map (lint-imports, CONTRIBUTING.md),
# types (mypy, strictness in pyproject.toml); then the tests.
test: setup check
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -q

check: setup
	$(BIN)/ruff check src tests benchmarks examples scripts
	$(BIN)/ruff format --check src tests benchmarks examples scripts
	$(BIN)/lint-imports
	$(BIN)/mypy

# The slow tests read runs back with the trackers' own clients: their extras are installed here, not by setup
# (CI's test command stays within its time limit). The report's browser test needs a Chromium: Debian's package,
# installed where none is on the PATH.
test-slow: setup
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
	$(PIP_INSTALL) -e '.[dev,tensorboard,mlflow,clearml,sacred,comet,wandb,slurm,postgres]'
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -q -m slow

# The hostile-input fuzz tests with 10,000 examples each (make test runs them bounded); about 35 minutes on 2 cores.
fuzz: setup
	EXPRESSO_FUZZ_PROFILE=long $(BIN)/python -m pytest -q tests/fuzz

bench: setup
	$(BIN)/python -m benchmarks

# The docs site into site/ (open site/index.html), strict: any warning fails it. The config reference, the events,
# the loop and the built-in callbacks and loggers are generated from the code (scripts/docs_reference.py).
docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) site .pytest_cache .hypothesis .mypy_cache .ruff_cache .import_linter_cache
