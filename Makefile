# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit integration install clean

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Start the whole gateway on the embedded broker, send sample requests, print results.
demo: $(STAMP)
	$(BIN)/python -m guardstream.demo examples/requests.jsonl

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy guardstream agents topics models

unit: $(STAMP)
	$(BIN)/python -m pytest -m "not integration" -q

integration: $(STAMP)
	$(BIN)/python -m pytest -m integration -q

## Lint, type-check and the whole test suite (unit + integration on real services).
test: lint typecheck $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
