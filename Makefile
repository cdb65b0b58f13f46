# Every developer verb. `make help` lists them.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help setup run test clamd chromium lint format bench bench-search bench-upload bench-notifications bench-events bench-inbox bench-metrics bench-processes bench-download-all bench-recall bench-batch bench-limits chaos screenshots fuzz clean

help: ## list the verbs
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@command -v python3 >/dev/null || { echo "python3 (3.11+) is required"; exit 1; }
	@python3 -m venv $(VENV) 2>/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq python3-venv && python3 -m venv $(VENV); \
	  else echo "python3 -m venv failed: install python3-venv"; exit 1; fi; }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP) ## create .venv and install the service with its test tools

run: $(STAMP) ## run API + worker on embedded defaults (PostgreSQL under ./.correspondence)
	$(VENV)/bin/correspondence serve

test: $(STAMP) clamd chromium ## run the whole test suite (embedded PostgreSQL, or CORRESPONDENCE_TEST_DATABASE_URL)
	$(VENV)/bin/pytest -q

# The malware-scan tests start their own clamd (with their own signatures; the freshclam service is
# neither needed nor started). Installed from Debian when missing.
clamd:
	@command -v clamd >/dev/null || [ -x /usr/sbin/clamd ] || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update && apt-get install -y clamav-daemon; \
	  else echo "clamd is missing: install Debian's clamav-daemon (sudo apt-get install clamav-daemon)"; exit 1; fi; }

# The web pages' end-to-end tests drive Debian's chromium with Playwright (Playwright's own browser
# download does not work everywhere). Installed from Debian when missing.
chromium:
	@[ -x /usr/bin/chromium ] || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update && apt-get install -y chromium; \
	  else echo "/usr/bin/chromium is missing: install Debian's chromium (sudo apt-get install chromium)"; exit 1; fi; }

lint: $(STAMP) ## ruff (lint + format check) and mypy
	$(VENV)/bin/ruff check src tests bench chaos
	$(VENV)/bin/ruff format --check src tests bench chaos
	$(VENV)/bin/mypy

format: $(STAMP) ## apply ruff's formatting and fixes
	$(VENV)/bin/ruff format src tests bench chaos
	$(VENV)/bin/ruff check --fix src tests bench chaos

chaos: $(STAMP) clamd ## fault injection at full size (processes killed, PostgreSQL restarted, outages); writes docs/RELIABILITY.md
	$(PY) -m chaos

fuzz: $(STAMP) ## schemathesis (official document, running service) and the odd-values fuzzing of every parameter
	$(VENV)/bin/pytest -q tests/test_schemathesis.py tests/test_fuzz_odd_values.py

bench: $(STAMP) ## Initialize against the bare app (alternating windows), bulk, serve's defaults, then a 100,000-recipient batch; writes bench/RESULTS.md (needs wrk: installed if missing)
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(PY) bench/initialize.py
	$(PY) bench/batch.py

bench-search: $(STAMP) ## recipients' search/overview at 10 M rows over 100,000 recipients; appends its section to bench/RESULTS.md
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(PY) bench/search.py

bench-upload: $(STAMP) ## attachments: 1 GB upload/download MB/s and server RSS; appends its section to bench/RESULTS.md
	@command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl; }
	$(PY) bench/upload.py

bench-notifications: $(STAMP) ## e-mails/s through SMTP to a local aiosmtpd server; appends to bench/RESULTS.md
	$(PY) bench/notifications.py

bench-events: $(STAMP) ## webhook event delivery per second to a local subscriber; appends to bench/RESULTS.md
	$(PY) bench/events.py

bench-inbox: $(STAMP) ## web inbox list page at 100,000 correspondences for one recipient; appends to bench/RESULTS.md
	$(PY) bench/inbox.py

bench-processes: $(STAMP) ## Initialize with serve --workers 1 and 2 side by side; writes to bench/RESULTS.md (needs wrk)
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(PY) bench/processes.py

bench-download-all: $(STAMP) ## download-all zip of 2 GB: MB/s and server RSS; writes to bench/RESULTS.md
	@command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl; }
	$(PY) bench/download_all.py

bench-batch: $(STAMP) ## a batch of 100,000 recipients: time to published and notified, Initialize/search p99 meanwhile; writes to bench/RESULTS.md (needs wrk)
	$(PY) bench/batch.py

bench-limits: $(STAMP) ## per-owner limits' cost: the token check with the rate limit, Initialize with the daily cap
	$(PY) bench/limits.py

bench-metrics: $(STAMP) ## a /metrics scrape at 10 M rows, cold and cached, and the request metrics' cost; writes to bench/RESULTS.md
	$(PY) bench/metrics.py

bench-recall: $(STAMP) ## recall and pause/resume of a resource at 100,000 correspondences (prints its timings)
	$(PY) bench/recall.py

screenshots: $(STAMP) chromium ## the README's screenshots of the web pages, into docs/
	CORRESPONDENCE_WEB_SCREENSHOTS=docs $(VENV)/bin/pytest -q tests/test_web_e2e.py

clean: ## remove the virtual environment and local data
	rm -rf $(VENV) .correspondence
