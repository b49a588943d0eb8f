# Two commands on a fresh clone: `make migrate`, then `make test`.
# With DATABASE_URL (or PG* variables) unset, a local cluster under var/pg is used.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell id -u)
DBTOOL := $(BIN)/dbtool

.PHONY: venv migrate validate status test bench seed stats snapshot docs lint db-up db-down backup restore clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

migrate: $(STAMP)
	$(DBTOOL) migrate
	$(DBTOOL) analytics init

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
	$(BIN)/pip install -q --disable-pip-version-check -e '.[bench]'
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[lint]'
	$(BIN)/ruff check dbtool tests bench

db-up: $(STAMP)
	$(DBTOOL) devdb up

db-down: $(STAMP)
	$(DBTOOL) devdb down

clean:
	-$(DBTOOL) devdb down
	rm -rf var $(VENV)

# pg_dump -Fc of the configured database to var/backups/ (or OUT=file).
backup: $(STAMP)
	$(DBTOOL) backup $(if $(OUT),--out "$(OUT)")

# make restore FILE=var/backups/x.dump [FORCE=1]: refuses a non-empty database unless FORCE=1.
restore: $(STAMP)
	@test -n "$(FILE)" || { echo "usage: make restore FILE=var/backups/<name>.dump [FORCE=1]" >&2; exit 2; }
	$(DBTOOL) restore "$(FILE)" $(if $(filter 1 yes true,$(FORCE)),--force)

# docs/SCHEMA.md, docs/CLI.md (and docs/schema.svg with Graphviz) from sql/ and --help.
docs: $(STAMP)
	$(DBTOOL) docs
