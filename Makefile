# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: run test install lint format check bench bench-small bench-large serve worker beat clean

$(STAMP): requirements.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed ($(PYTHON) not found); set PYTHON=..."; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $(STAMP)

install: $(STAMP)

## Start the app with demo data on http://localhost:$(PORT).
## Embedded mode by default (SQLite, tasks in-process, a scheduler process for rolling
## segments); with REDIS_URL set it also starts a Celery worker and beat.
run: export DEBUG ?= 1
# Webhook URLs on this machine (manage.py webhook_receiver) are let through; see README, Configuration.
run: export WEBHOOK_ALLOWED_NETWORKS ?= 127.0.0.0/8
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo_setup --base-url http://localhost:$(PORT)
	@set -e; trap 'kill 0' EXIT INT TERM; \
	if [ -n "$$REDIS_URL" ]; then \
	  $(BIN)/celery -A events_platform worker --loglevel=warning --concurrency=2 & \
	  $(BIN)/celery -A events_platform beat --loglevel=warning --schedule=/tmp/events-platform-celerybeat & \
	else \
	  $(BIN)/python manage.py run_scheduler & \
	fi; \
	$(BIN)/python manage.py runserver 0.0.0.0:$(PORT)

## Run the whole test suite (SQLite by default; DATABASE_URL / REDIS_URL select PostgreSQL / Redis).
test: install
	$(BIN)/pytest

## ruff, mypy (settings read with DEBUG=1, as for local work) and the import contract (pyproject.toml).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DEBUG=1 $(BIN)/mypy .
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

check: install
	DEBUG=1 $(BIN)/python manage.py makemigrations --check --dry-run
	DEBUG=0 SECRET_KEY=check-deploy-$$(head -c 48 /dev/urandom | base64 | tr -d '/+=\n') ALLOWED_HOSTS=example.com \
	  $(BIN)/python manage.py check --deploy --fail-level WARNING

bench: install
	$(BIN)/python -m bench.run

bench-small: install
	$(BIN)/python -m bench.run --small

## 1M contacts / 10M events loaded by COPY, then every figure, and the growth from the default
## size (its latest run in bench/results). BENCH_LARGE_ARGS="--contacts 300000 --events 3000000" reduces it.
bench-large: install
	$(BIN)/python -m bench.run --large $(BENCH_LARGE_ARGS)

# Production-style processes (see Procfile).
serve: install
	$(BIN)/gunicorn events_platform.wsgi --config gunicorn.conf.py
worker: install
	$(BIN)/celery -A events_platform worker --loglevel=info
beat: install
	$(BIN)/celery -A events_platform beat --loglevel=info

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles .pytest_cache .ruff_cache .mypy_cache .import_linter_cache
