# The two commands a newcomer needs: `make run` and `make test` (see README.md).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements-dev.txt | cksum | cut -d' ' -f1)

.PHONY: install run test lint check pytest test-tools services-start services-stop lock messages clean bench-regions bench-progress bench-delivery bench-intake bench-dashboard bench-public bench-snapshot bench-snapshot-cost bench-snapshot-lag bench-mirror bench-poller bench-election bench

install: $(STAMP)

$(STAMP): requirements-dev.txt
	@python="$$(scripts/find-python)" || exit 1; \
	if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then \
		rm -rf $(VENV); "$$python" -m venv $(VENV) || exit 1; \
	fi
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

# Web on http://127.0.0.1:8000, a Celery worker and beat, the publication server stand-in on
# :8001 and the upload simulator, under honcho (Procfile). Ctrl-C stops them all, then the
# embedded PostgreSQL and Redis (when DATABASE_URL / REDIS_URL are unset), and ends quietly:
# the shell's INT trap lets the recipe outlive the Ctrl-C that honcho answers with 130.
run: install
	$(PY) manage.py migrate --no-input
	$(PY) manage.py load_demo --accounts
	$(PY) manage.py collectstatic --no-input --verbosity 0
	@trap '$(PY) -m sirekap_tracker.embedded stop' EXIT; trap : INT; \
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/honcho --procfile Procfile --env /dev/null start; \
	status=$$?; [ $$status -eq 0 ] || [ $$status -eq 130 ]

# make run's environment; each may be set in the shell instead (`WEB_PORT=9000 make run`).
# The demo's clocks are shorter than production's, so that the story plays within its five
# minutes: a dropped delivery gives up after 5 s (not 30), retries wait at most 30 s (not 300),
# and an upload still undelivered after 2 minutes (not 30) is flagged stuck.
# Production's own settings otherwise (DEBUG off: hashed static names, error pages without
# tracebacks, which the terminal shows instead; `DEBUG=true make run` for Django's debug pages),
# but cookies over plain HTTP, since the demo runs on http://127.0.0.1.
run: export DEBUG ?= false
run: export SECURE_COOKIES ?= false
run: export WEB_PORT ?= 8000
run: export PUBLICATION_PORT ?= 8001
run: export PUBLICATION_URL ?= http://127.0.0.1:$(PUBLICATION_PORT)
run: export SIREKAP_DATA_URL ?= http://127.0.0.1:$(PUBLICATION_PORT)/data
run: export POLL_INTERVAL_SECONDS ?= 10
run: export DELIVERY_TIMEOUT_SECONDS ?= 5
run: export DELIVERY_BACKOFF_CAP_SECONDS ?= 30
run: export STUCK_AFTER_MINUTES ?= 2
# Static files as production serves them (hashed, compressed, cached for a year), so that a
# phone's first view of a public page weighs what it will on the night.
run: export STATIC_ROOT ?= $(CURDIR)/.var/static

# The embedded servers the checks start on demand are stopped afterwards (unless they were
# already running, e.g. for a `make run` in another terminal).
test: install test-tools
	$(PY) -m sirekap_tracker.embedded session -- $(MAKE) --no-print-directory lint check pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy regions accounts uploads dashboard public operations simulator sirekap_tracker

check: install
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run

pytest: install
	$(PY) -m pytest -n auto

# Browser tests drive Debian's Chromium, the nginx tests Debian's nginx (and bench-public wrk too).
# As root we install what is missing; otherwise those tests are skipped and pytest says why.
test-tools:
	@scripts/ensure-test-tools

# Timings of import_regions (100,000 rows) and generate_regions (823,236 TPS), each in a database
# of its own (BENCH_DATABASE, default sirekap_bench) that is created and dropped on the server
# DATABASE_URL points to; the embedded servers it started on demand are stopped afterwards.
bench-regions: install
	$(PY) -m sirekap_tracker.embedded session -- $(SHELL) -c \
		'$(PY) -m benchmarks.import_regions && $(PY) -m benchmarks.generate_regions'

# Status changes per second with the per-area progress counts maintained (2 writer processes for
# 20 s over 823,236 TPS x 5 contests), the fold lag, read timings, and a recount that must find
# no drift; in a database of its own like bench-regions (BENCH_DATABASE, created and dropped).
bench-progress: install
	$(PY) -m sirekap_tracker.embedded session -- $(PY) -m benchmarks.progress

# Deliveries per second: 2,000 uploads taken in, then delivered by a real worker (16 threads, as
# docker-compose.yml runs it) to the publication server stand-in with no latency.
bench-delivery: install
	$(PY) -m sirekap_tracker.embedded session -- $(PY) -m benchmarks.delivery

# CPU per upload of the intake (POST /api/uploads/ with production's settings, 300 uploads):
# this process and its PostgreSQL backend, and the statements sent (about 30 seconds).
bench-intake: install
	$(PY) -m sirekap_tracker.embedded session -- $(PY) -m benchmarks.intake_cost --refused

# Server time of the dashboard's national, provinsi and kabupaten pages and poll fragment over
# 823,236 TPS x 5 contests (about 3 minutes, most of it building the data).
bench-dashboard: install
	$(PY) -m sirekap_tracker.embedded session -- $(PY) -m benchmarks.dashboard

# Requests per second of the public page and of its JSON (the PPU demo, /progress/pkwkk/6409/ and
# /api/hhcw/pkwkk/64/6409.json) under wrk at 32 and 200 connections, beside a trivial Django view
# answering the same bytes (same middleware, same gunicorn.conf.py), nginx serving them as files,
# and the production nginx config (deploy/nginx/, short cache) in front of the same gunicorn;
# about 3 minutes, in a throwaway database like the others. Needs wrk and nginx (as root, apt).
bench-public: install
	@scripts/ensure-test-tools nginx wrk
	$(PY) -m sirekap_tracker.embedded session -- $(PY) -m benchmarks.public_load

# What the public snapshot costs the workers at 823,236 TPS x 5 contests: the first build of the
# nation, provinsi and kabupaten pages and files, then a refresh after 2,000 status changes
# (about 4 minutes, most of it building the data).
bench-snapshot: install
	$(PY) -m sirekap_tracker.embedded session -- $(PY) -m benchmarks.snapshot

# What a refresh costs the refreshing process per area, in CPU time: the most-read areas of ppwp
# with the entries read on the night, rebuilt three times (docs/performance.md).
bench-snapshot-cost: install
	$(PY) -m sirekap_tracker.embedded session -- $(PY) -m benchmarks.snapshot --cost

# How long a publication takes to show in the public JSON, page and poll part at 150 a second
# for 2 minutes over the national tree, with the snapshot worker and beat run as deployed
# (about 10 minutes, half of it building the data).
bench-snapshot-lag: install
	$(PY) -m sirekap_tracker.embedded session -- $(PY) -m benchmarks.snapshot_lag

# What mirroring the snapshot to a bucket costs the refresh, and the puts, against moto's S3
# server on loopback (the PPU demo; about 2 minutes).
bench-mirror: install
	$(PY) -m sirekap_tracker.embedded session -- $(PY) -m benchmarks.mirror

# The poller's CPU per poll and per published upload: 1,000 TPS x 5 forms published on the
# stand-in over a 20,000-TPS tree, one poll down to them, one with nothing new; two rounds
# (about 5 minutes).
bench-poller: install
	$(PY) -m sirekap_tracker.embedded session -- $(PY) -m benchmarks.poller

# Election night at national scale: 823,236 TPS x 5 contests, 150 uploads/s through the intake
# API for 15 minutes with every process of docker-compose.yml, faults and fault drills; per
# minute and in total what is taken in, delivered, published and seen, and at the end nothing
# lost, nothing twice, counts equal to a recount (about 25 minutes). A shorter night:
# `.venv/bin/python -m benchmarks.election --tps 20000 --rate 100 --minutes 3`. It runs a
# PostgreSQL and a Redis of its own (its drills restart them), so no embedded session is needed.
bench-election: install
	$(PY) -m benchmarks.election

# Every benchmark above, one after the other (about 60 minutes); the figures go in the README.
bench: bench-regions bench-progress bench-delivery bench-intake bench-dashboard bench-snapshot bench-snapshot-lag bench-mirror bench-poller bench-public bench-election

services-start: install
	$(PY) -m sirekap_tracker.embedded start

services-stop: install
	$(PY) -m sirekap_tracker.embedded stop

# Re-pin dependencies after editing pyproject.toml.
lock: install
	$(VENV)/bin/pip install --quiet pip-tools
	$(VENV)/bin/pip-compile --quiet --strip-extras --generate-hashes --allow-unsafe --no-emit-index-url --no-emit-find-links -o requirements.txt pyproject.toml
	$(VENV)/bin/pip-compile --quiet --strip-extras --generate-hashes --allow-unsafe --no-emit-index-url --no-emit-find-links --extra embedded --extra dev -o requirements-dev.txt pyproject.toml

clean:
	-$(PY) -m sirekap_tracker.embedded stop
	rm -rf $(VENV) .var

# Refresh the Indonesian catalogue after changing interface strings, then translate the new
# entries in locale/id/LC_MESSAGES/django.po and run this again to compile them.
messages: install
	$(PY) manage.py makemessages --locale id --no-location --no-obsolete --no-wrap --ignore .venv --ignore .var
	$(PY) manage.py compilemessages --ignore .venv
