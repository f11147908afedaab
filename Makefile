# The whole developer interface. `make run` and `make test` install what they need by themselves.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
UV_VERSION := 0.13.9
VENV := .venv
UV := .tools/bin/uv
STAMP := $(VENV)/.installed
# Debian's Java pieces of the Spark engine (lakehouse.spark.jars): jarjar + ASM rebuild Iceberg's shaded
# Jackson, the SQLite JDBC driver opens the catalog file. About 2 s when the package lists are fresh.
SPARK_DEBS := libjarjar-java libasm-java libxerial-sqlite-jdbc-java
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The BI tool (lakehouse.bi): Superset in its own venv (it pins SQLAlchemy 1.4; Airflow 3 needs 2.x), and
# Debian's Chromium for the dashboards' browser test (Playwright's own browser download is not reachable).
BI_VENV := .venv-bi
BI_STAMP := $(BI_VENV)/.installed
BI_DEBS := chromium

.PHONY: install bi-install run test bench ui bi lint lock lock-bi clean

install: $(STAMP)

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Exact versions from requirements.lock; the project itself in editable mode. Bytecode is compiled once
# here (about 10 s): where PYTHONDONTWRITEBYTECODE is set, or the venv is read-only, every process would
# otherwise compile Airflow, dbt and Cosmos again at import (about 4 s a process).
$(STAMP): requirements.lock pyproject.toml $(UV)
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(VENV)
	$(UV) pip sync --quiet --compile-bytecode --python $(VENV)/bin/python requirements.lock
	$(UV) pip install --quiet --python $(VENV)/bin/python --no-deps -e .
	@dpkg -s $(SPARK_DEBS) >/dev/null 2>&1 || $(SUDO) apt-get install -y -qq --no-upgrade $(SPARK_DEBS) >/dev/null \
	  || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-upgrade $(SPARK_DEBS) >/dev/null)
	$(VENV)/bin/python -m lakehouse.spark.jars >/dev/null
	touch $(STAMP)

$(BI_STAMP): requirements-bi.lock $(UV)
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(BI_VENV)
	$(UV) pip sync --quiet --compile-bytecode --python $(BI_VENV)/bin/python requirements-bi.lock
	@dpkg -s $(BI_DEBS) >/dev/null 2>&1 || $(SUDO) apt-get install -y -qq --no-upgrade $(BI_DEBS) >/dev/null \
	  || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-upgrade $(BI_DEBS) >/dev/null)
	touch $(BI_STAMP)

bi-install: $(BI_STAMP)

run: install
	$(VENV)/bin/lakehouse run $(PIPELINES)

# Lint first; then the suite on both cores (-n 2; a test file stays on one worker, so its module fixtures
# are built once), and the ten slowest tests at the end.
test: install bi-install lint
	$(VENV)/bin/python -m pytest -n 2 --dist loadfile --durations=10 $(PYTEST_ARGS)

bench: install
	$(VENV)/bin/python -m bench

# The dbt SQL that sqlfluff lints (settings: .sqlfluff; macro folders are loaded, not linted: .sqlfluffignore).
SQL_LINT_PATHS = $(wildcard pipelines/*/dbt/models pipelines/*/dbt/tests tests/fixtures/*/models tests/fixtures/*/tests)

# ruff check (settings: pyproject.toml; `ruff format` is not adopted) and sqlfluff; both always run,
# and lint fails if either found something. (The warnings filter: multiprocessing's noise about
# semaphores of sqlfluff's worker pool at exit.)
lint: install
	@status=0; \
	$(VENV)/bin/ruff check . || status=1; \
	PYTHONWARNINGS=ignore:resource_tracker:UserWarning \
	  $(VENV)/bin/sqlfluff lint --processes 2 $(SQL_LINT_PATHS) || status=1; \
	exit $$status

ui: install
	$(VENV)/bin/lakehouse ui

# Superset on this lakehouse (lakehouse bi start): provisions every pipeline's dashboards, prints the login.
bi: install bi-install
	$(VENV)/bin/lakehouse bi start

lock: $(UV)
	$(UV) pip compile --quiet pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

lock-bi: $(UV)
	$(UV) pip compile --quiet requirements-bi.in --python-version 3.11 -o requirements-bi.lock

clean:
	rm -rf .lakehouse .pytest_cache pipelines/*/dbt/target pipelines/*/dbt/dbt_packages pipelines/*/dbt/logs
