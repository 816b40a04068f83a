# The README's two commands are `make run` and `make test`; each installs what it needs.
VENV ?= .venv
PY := $(VENV)/bin/python
APPLICANTS ?= 20000
STACK ?= embedded
TEST_WORKERS ?= 2

.PHONY: setup setup-apache run up down status test bench clean

# The embedded stack needs no Java; the apache stack, the tests and the benchmarks run both stacks.
setup:
	@bash deploy/scripts/bootstrap.sh $(if $(filter apache,$(STACK)),--apache,)

setup-apache:
	@bash deploy/scripts/bootstrap.sh --apache

run: setup
	$(PY) -m deploy.local run --stack $(STACK) --applicants $(APPLICANTS) $(if $(KEEP_RUNNING),--keep-running,)

up: setup
	$(PY) -m deploy.local up --stack $(STACK)

down:
	$(PY) -m deploy.local down

status:
	$(PY) -m deploy.local status

test: setup-apache
	$(PY) -m pytest -q -n $(TEST_WORKERS)

bench: setup-apache
	BENCH_BASELINE=$(BASELINE) $(PY) -m bench --update-readme $(if $(QUICK),--quick,)

clean: down
	rm -rf .run
