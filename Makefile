# The README's two commands are `make run` and `make test`; each installs what it needs.
VENV ?= .venv
PY := $(VENV)/bin/python
APPLICANTS ?= 20000
STACK ?= embedded

.PHONY: setup run up down status test bench clean

setup:
	@bash deploy/scripts/bootstrap.sh

run: setup
	$(PY) -m deploy.local run --stack $(STACK) --applicants $(APPLICANTS)

up: setup
	$(PY) -m deploy.local up --stack $(STACK)

down:
	$(PY) -m deploy.local down

status:
	$(PY) -m deploy.local status

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) -m bench --update-readme $(if $(QUICK),--quick,)

clean: down
	rm -rf .run
