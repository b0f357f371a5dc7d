# The two commands that set everything up on a fresh machine:
#   make demo   – create .venv, install, run the end-to-end demo on the embedded default
#   make test   – install the dev extras and run lint, layer contracts, the type checker,
#                 the whole suite and the docstrings' examples
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONSTRAINTS := constraints.txt

.PHONY: demo test install install-dev lint contracts typecheck pytest docs bench bench-venvs clean constraints

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# What the README's commands need: the demo (sklearn, plots), `modelyard server` (server),
# `modelyard serve` (serving), `deploy compile` (compile), `data` (data), `features` (features),
# `gate` (validation), `drift` and `monitor` (monitoring).
# The backends (postgres, redis, s3) and other model flavours stay extras of their own.
# An editable install writes no bytecode when PYTHONDONTWRITEBYTECODE is set; compile it
# once, as installing a wheel would, so every command does not recompile ~40 modules.
RUNTIME_EXTRAS := sklearn,plots,server,serving,compile,data,features,validation,monitoring

install: $(BIN)/python
	$(BIN)/pip install --quiet -c $(CONSTRAINTS) -e '.[$(RUNTIME_EXTRAS)]'
	$(BIN)/python -m compileall -q src

install-dev: $(BIN)/python
	$(BIN)/pip install --quiet -c $(CONSTRAINTS) -e '.[dev]'
	$(BIN)/python -m compileall -q src

demo: install
	$(BIN)/modelyard demo

lint:
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

contracts:
	$(BIN)/lint-imports --no-cache

# mypy, configured in pyproject.toml: strict on the public API, normal elsewhere.
typecheck:
	$(BIN)/mypy

# The suite, then every example in the package's docstrings (Alembic's env.py runs only
# inside Alembic; server/control/metrics.py's example is being rewritten with that module).
# Two workers (pytest-xdist): most of the suite waits on servers, subprocesses and
# PostgreSQL, so one process left a 2-core machine half idle. A test file runs whole on one
# worker (--dist loadscope): its module fixtures (a server, a built yard) start once. Files
# are handed out in the suite's order, which puts the slow ones first (tests/conftest.py).
pytest:
	$(BIN)/pytest -q -p no:cacheprovider -n 2 --dist loadscope --no-loadscope-reorder
	$(BIN)/pytest -q -p no:cacheprovider --doctest-modules src/modelyard \
	  --ignore=src/modelyard/store/alembic \
	  --deselect src/modelyard/server/control/metrics.py::modelyard.server.control.metrics

# The documentation site, built from docs/ into site/ (git-ignored; a broken link, a page
# missing from the nav or a bad anchor fails it); tests/test_docs_site.py runs its examples.
docs:
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir site

test: install-dev lint contracts typecheck docs pytest

# Peers with pins that clash with ours get virtualenvs of their own (git-ignored).
# Evidently 0.7.23 allows pandas 3 but cannot be imported with it: pandas < 3 there.
bench-venvs:
	test -x benchmarks/.work/feast-venv/bin/python || ($(PYTHON) -m venv benchmarks/.work/feast-venv \
	  && benchmarks/.work/feast-venv/bin/pip install --quiet 'feast==0.67.0')
	test -x benchmarks/.work/ge-venv/bin/python || ($(PYTHON) -m venv benchmarks/.work/ge-venv \
	  && benchmarks/.work/ge-venv/bin/pip install --quiet 'great_expectations==1.24.1')
	test -x benchmarks/.work/evidently-venv/bin/python || ($(PYTHON) -m venv benchmarks/.work/evidently-venv \
	  && benchmarks/.work/evidently-venv/bin/pip install --quiet 'evidently==0.7.23' 'pandas<3' pyarrow)

bench: install-dev bench-venvs
	$(BIN)/python benchmarks/tracking.py
	$(BIN)/python benchmarks/tracking_server.py
	$(BIN)/python benchmarks/scale.py
	$(BIN)/python benchmarks/search_entities.py
	$(BIN)/python benchmarks/search_runs.py
	$(BIN)/python benchmarks/metric_history.py
	$(BIN)/python benchmarks/data.py
	$(BIN)/python benchmarks/features.py
	$(BIN)/python benchmarks/serving.py
	$(BIN)/python benchmarks/drift.py
	$(BIN)/python benchmarks/monitoring_window.py

clean:
	rm -rf $(VENV) .modelyard .pytest_cache .ruff_cache .mypy_cache

# xgboost-cpu has no macOS wheel: there the xgboost extra installs xgboost, pinned to the
# same version (awk).
constraints: install-dev
	(echo "# Pinned versions for reproducible installs: pip install -c constraints.txt -e '.[dev]'"; \
	 echo "# Regenerate after changing dependencies: make constraints"; \
	 $(BIN)/pip freeze --exclude-editable | grep -v '^modelyard' \
	   | awk '{ print } /^xgboost-cpu==/ { sub(/^xgboost-cpu/, "xgboost"); print }' \
	   | sort -f) > $(CONSTRAINTS)
