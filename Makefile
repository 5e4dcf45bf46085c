# VetBook: `make run` serves the app with demo data; `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip --disable-pip-version-check -q

.PHONY: run test test-pg18 test-pg15 test-quick test-clock-edges venv system-deps db-stop lint lock bench docker-build clean

$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --require-hashes -r requirements.lock
	$(PIP) install --no-deps -e . --config-settings editable_mode=compat
	touch $@

venv: $(VENV)/.installed

## Set everything up, start the embedded PostgreSQL, migrate, load demo data, serve on http://127.0.0.1:8000
## (with the simulated payment gateway, which is off unless asked for: it lets anyone "pay" without money)
run: venv
	$(BIN)/vetbook demo --history 42
	VETBOOK_SANDBOX_PAYMENTS=1 $(BIN)/vetbook serve

## The whole suite: PostgreSQL 18 (embedded) for everything, then the database tests again on PostgreSQL 15
test: venv system-deps test-pg18 test-pg15

test-pg18: venv
	$(BIN)/pytest -q -p no:cacheprovider

## A quicker local run: no browser tests, no failover drills (make test runs them all)
test-quick: venv
	$(BIN)/pytest -q -p no:cacheprovider -m "not e2e and not drill"

test-pg15: venv
	VETBOOK_TEST_PG=15 $(BIN)/pytest -q -p no:cacheprovider tests/db

## The time-sensitive tests again under libfaketime, just before and after local midnight in WIB, WITA and WIT
## and around a UTC month boundary (.ci/clock-edges says which tests and instants); CI runs it after `make test`
test-clock-edges: venv system-deps
	bash .ci/clock-edges

system-deps:
	bash .ci/system-deps

## Stop the embedded PostgreSQL that `make run` started
db-stop: venv
	$(BIN)/vetbook db stop

lint: venv
	$(BIN)/ruff check .

## Re-pin every dependency with hashes (never commit uv.lock: it names the registry's host)
lock:
	uv pip compile pyproject.toml --extra test --generate-hashes -o requirements.lock
	uv pip compile pyproject.toml --generate-hashes -o requirements-prod.lock

docker-build:
	docker build -t vetbook .

clean:
	rm -rf $(VENV) test-artifacts .pytest_cache

## Translations (web/core/i18n.py): extract every message of web/ and templates/ into messages.pot, then
## bring each catalog up to date (new messages arrive empty; tests/i18n fails until they are translated)
TRANSLATIONS := web/translations
LOCALES := id ja
.PHONY: messages compile-messages
messages: venv
	$(BIN)/pybabel extract -F babel.cfg --project=VetBook --copyright-holder="VetBook" --sort-by-file \
		--add-location=file -o $(TRANSLATIONS)/messages.pot .
	for locale in $(LOCALES); do \
		if [ -f $(TRANSLATIONS)/$$locale/LC_MESSAGES/messages.po ]; then \
			$(BIN)/pybabel update -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS) -l $$locale --ignore-obsolete; \
		else \
			$(BIN)/pybabel init -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS) -l $$locale; \
		fi; \
	done

## Optional: write the .mo files (git-ignored); without them the app compiles each .po in memory on first use
compile-messages: venv
	$(BIN)/pybabel compile -d $(TRANSLATIONS) --statistics

## Benchmarks (figures and ratios against a baseline; see bench/README.md and docs/performance.md). Default
## sizes take a few minutes on the 2-core machine; JSON reports land in bench/results/ (git-ignored).
bench: venv
	$(BIN)/python bench/slot_search.py
	$(BIN)/python bench/live_updates.py
	$(BIN)/python bench/booking_throughput.py
	$(BIN)/python bench/read_paths.py
	$(BIN)/python bench/partition_overhead.py
	$(BIN)/python bench/citus_booking.py
	$(BIN)/python bench/restore_drill.py
