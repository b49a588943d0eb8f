# Two commands on a fresh clone: `make migrate`, then `make test`.
# With DATABASE_URL (or PG* variables) unset, a local cluster under var/pg is used.
# Every dependency comes from requirements.lock (exact versions and hashes); `make lock`
# regenerates it after a change to pyproject.toml's dependencies (UPGRADE=1 to take new releases).
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell id -u)
DBTOOL := $(BIN)/dbtool
# The local cluster's stop needs only the standard library: no venv is built for it.
DEVDB := PYTHONPATH="$(CURDIR)" $(PY) -m dbtool.devdb

.PHONY: venv migrate validate status test bench seed stats snapshot docs lint lock db-up db-down backup restore clean

venv: $(STAMP)

# The package itself is installed without build isolation: setuptools comes from the lock too.
$(STAMP): requirements.lock pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --require-hashes --no-deps -r requirements.lock
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --all-extras --generate-hashes --universal --python-version 3.11 \
		--no-header --quiet $(if $(filter 1 yes true,$(UPGRADE)),--upgrade) -o requirements.lock

migrate: $(STAMP)
	$(DBTOOL) migrate
	$(DBTOOL) analytics init
	@echo "next: .venv/bin/dbtool status (or activate the venv: . .venv/bin/activate)"

validate: $(STAMP)
	$(DBTOOL) validate

snapshot: $(STAMP)
	$(DBTOOL) snapshot

seed: $(STAMP)
	$(DBTOOL) seed

stats: $(STAMP)
	$(DBTOOL) stats

status: $(STAMP)
	$(DBTOOL) status

# pytest's exit 5 ("no tests collected") is no failure of the whole suite, but with
# PYTEST_ARGS it means the selection matched nothing: that fails.
test: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS); rc=$$?; [ $$rc -eq 5 ] && [ -z "$(PYTEST_ARGS)" ] && exit 0; exit $$rc

bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check dbtool tests bench
	$(BIN)/mypy
	$(DBTOOL) lint sql/

db-up: $(STAMP)
	$(DBTOOL) devdb up

db-down:
	$(DEVDB) down

# Stops the local cluster first; if it cannot be stopped, nothing is deleted.
clean:
	$(DEVDB) down
	rm -rf var $(VENV)

# Values reach the shell as environment variables, never pasted into the command line,
# so nothing in them (quotes, backticks) is executed.
# pg_dump -Fc of the configured database to var/backups/ (or OUT=file).
backup: $(STAMP)
	$(DBTOOL) backup $${OUT:+--out "$$OUT"}

# make restore FILE=var/backups/x.dump [FORCE=1]: refuses a non-empty database unless FORCE=1.
restore: $(STAMP)
	@test -n "$${FILE-}" || { echo "usage: make restore FILE=var/backups/<name>.dump [FORCE=1]" >&2; exit 2; }
	$(DBTOOL) restore "$$FILE" $(if $(filter 1 yes true,$(FORCE)),--force)

# docs/SCHEMA.md, docs/CLI.md (and docs/schema.svg with Graphviz) from sql/ and --help.
docs: $(STAMP)
	$(DBTOOL) docs
