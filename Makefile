# Complaint platform: local stack and tests. `make` alone lists the targets.
# The stack (Kafka + FerretDB) is run by infra/local/stack.sh; see infra/local/README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON      ?= python3
VENV        := .venv
VPY         := $(VENV)/bin/python
VENV_STAMP  := $(VENV)/.installed
STACK       := infra/local/stack.sh
PYTEST_ARGS ?=

# `make up`: the developer stack; `make test`: its own ports and data folder, so both can run at once
UP_KAFKA_PORT    ?= 9092
UP_MONGO_PORT    ?= 27017
TEST_KAFKA_PORT  ?= 29092
TEST_MONGO_PORT  ?= 29017
UP_STACK_ARGS    := --name up --kafka-port $(UP_KAFKA_PORT) --mongo-port $(UP_MONGO_PORT)
TEST_STACK_ARGS  := --name test --kafka-port $(TEST_KAFKA_PORT) --mongo-port $(TEST_MONGO_PORT)
# Kafka with SASL/SCRAM and the production ACLs, a user per service (docs/adr/0021); 0 turns them off.
KAFKA_AUTH       ?= 1
AUTH_ARG         := $(if $(filter 1 yes true,$(KAFKA_AUTH)),--auth)
CACHE            := $(or $(COMPLAINTS_CACHE),$(CURDIR)/.cache)

.PHONY: help venv vendor up down test lint test-unit services-up services-down status bench bench-metrics bench-roundtrip docs lint-tools

help: ## list the targets
	@echo "Targets:"
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-zA-Z_-]+):.*## (.*)/  \1\t\2/' | expand -t 18
	@echo "Variables: PYTEST_ARGS='...' (e.g. -k name -x), MONGODB_URL=mongodb://... (use a real MongoDB instead of FerretDB)"
	@echo "           KAFKA_AUTH=0 (up, test: Kafka without users; by default SASL/SCRAM, a user per service and ACLs)"
	@echo "           BROKERS=3 (up: a three-broker KRaft cluster on ports 9092-9094, topics with 3 replicas, 2 in sync; docs/adr/0030)"

venv: $(VENV_STAMP) ## create .venv and install the project with its test extras

$(VENV_STAMP): pyproject.toml
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q -e '.[test]'
	@touch $@

vendor: venv ## copy Chart.js (pinned in tools/charts) into intake's static assets (npm ci once)
	$(VPY) -m tools.vendor_charts

up: vendor ## start Kafka + FerretDB (ports 9092/27017) and the services, in the background; DEMO=week seeds a week of traffic
	$(STACK) start $(UP_STACK_ARGS) $(AUTH_ARG) $(if $(BROKERS),--brokers $(BROKERS))
	@$(MAKE) --no-print-directory services-up
	$(VPY) -m tools.seed_demo --routing-url http://127.0.0.1:8002
	@if [ "$(DEMO)" = "week" ]; then eval "$$($(STACK) env $(UP_STACK_ARGS))"; \
	  $(VPY) -m tools.demo_week --kafka 127.0.0.1:$(UP_KAFKA_PORT) \
	  --mongodb-url "$${MONGODB_URL:-mongodb://127.0.0.1:$(UP_MONGO_PORT)/}"; fi
	@echo
	@echo "Stack 'up' is running:"
	@echo "  Kafka    $$($(STACK) env $(UP_STACK_ARGS) | sed -n 's/^export KAFKA_BOOTSTRAP_SERVERS=//p')"
	@echo "  MongoDB  $${MONGODB_URL:-mongodb://127.0.0.1:$(UP_MONGO_PORT)/}"
	@echo "  logs     $(CACHE)/up/logs/"
	@echo "  status   $(STACK) status --name up"
	@echo "  stop     make down"
	@echo
	@echo "Where to look:"
	@echo "  complaint page   http://127.0.0.1:8001/   (story 1: pick the driver category, Call me now; it opens your case page)"
	@echo "  from an order    http://127.0.0.1:8001/?order_id=114-5523190-0012345   (story 2: 8 items, 2 delayed)"
	@echo "  locked out       http://127.0.0.1:8001/locked-out   (story 3: seller sel-48213; the code arrives in the mailbox)"
	@echo "  API docs         http://127.0.0.1:8001/docs"
	@echo "  agent desktop    http://127.0.0.1:8001/desk/   (development sign-in as agt-ana, agt-priya or agt-omar: a complaint goes to the fitting agent with the fewest cases; agt-sec-lee for story 3)"
	@echo "  partner view     http://127.0.0.1:8001/partner/ (development sign-in for team-logistics-uk-south, or team-account-security for story 3)"
	@echo "  agent API        http://127.0.0.1:8002/docs   (routing: roster, queues, transfer, resolve, partner inbox; agent JWT, see README)"
	@echo "  demo roster      agt-ana, agt-priya, agt-omar, agt-sec-lee, sup-maya; 3 partner teams (tools/seed_demo.py)"
	@echo "  carrier API      http://127.0.0.1:8003/docs   (shipments of a complaint, agent re-check, signed tracking webhook)"
	@echo "  notify           http://127.0.0.1:8004/docs   (closure links, notification requests, bounces)"
	@echo "  the mailbox      http://127.0.0.1:8025/       (every email notify sent; SMTP on 127.0.0.1:2525)"
	@echo "  order simulator  http://127.0.0.1:8090/docs   (orders and seller accounts of the three stories)"
	@echo "  carrier sim.     http://127.0.0.1:8091/docs   (FedEx, UPS, USPS, Australia Post; PUT /scenarios, PUT /faults)"
	@echo "  telephony sim    http://127.0.0.1:8092/received (calls and SMS notify asked for)"
	@echo "  service logs     $(CACHE)/up/logs/<service>.log (intake, routing, carrier, notify and the simulators)"
	@echo "  events           docs/asyncapi.json (AsyncAPI 3 of every topic), docs/schemas/"
	@echo "  CLI              .venv/bin/complaints --help   (inspect a complaint, rebuild a projection, dead letters)"
	@echo "  metrics          http://127.0.0.1:8001/desk/metrics (sign in as sup-maya, supervisor; make up DEMO=week seeds a week); .venv/bin/complaints metrics"
	@echo "  bench            make bench                    (issue 14's figures on a stack of its own; make bench-roundtrip: one hop on this one)"

down: ## stop what `make up` started
	@$(MAKE) --no-print-directory services-down
	$(STACK) stop $(UP_STACK_ARGS)

status: ## show what the `up` stack runs
	@$(STACK) status $(UP_STACK_ARGS) || true

# ---- hooks for the services (intake, routing, carrier, notify): filled in by later issues ----
services-up: ## start the order simulator and the services on the `up` stack (infra/local/services.sh)
	infra/local/services.sh start $(UP_STACK_ARGS)
services-down: ## stop them
	infra/local/services.sh stop --name up
# ----------------------------------------------------------------------------------------------

# Starts a fresh stack on the test ports, runs pytest against it, and ALWAYS stops it again,
# keeping pytest's exit code. A MONGODB_URL from the environment is used instead of FerretDB.
test: vendor lint ## the static checks, then all tests against a fresh Kafka + FerretDB on ports 29092/29017
	@user_mongo="$${MONGODB_URL:-}"; \
	trap '$(STACK) stop $(TEST_STACK_ARGS)' EXIT; trap 'exit 130' INT; trap 'exit 143' TERM; \
	$(STACK) start $(TEST_STACK_ARGS) --fresh $(AUTH_ARG) || exit $$?; \
	export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$(TEST_KAFKA_PORT); \
	eval "$$($(STACK) env $(TEST_STACK_ARGS))"; \
	export MONGODB_URL="$${user_mongo:-mongodb://127.0.0.1:$(TEST_MONGO_PORT)/}"; \
	rc=0; $(VPY) -m pytest $(PYTEST_ARGS) || rc=$$?; \
	exit $$rc

lint: venv ## ruff (pyflakes, bugbear, import order, format) on the code, mypy --strict on the domain and kernel modules (pyproject.toml)
	$(VPY) -m ruff check services contracts tests tools bench
	$(VPY) -m ruff format --check services contracts tests tools bench
	$(VPY) -m mypy

lint-tools: ## install kubeconform, kube-score, hadolint, checkov into .cache (the lint tests do it on first use)
	tools/k8s/linters.sh

test-unit: venv ## run the unit tests only (no stack)
	$(VPY) -m pytest tests/unit $(PYTEST_ARGS)

# `make bench` starts its own stack (name `bench`, fresh data, its own ports) and the services on
# it, and stops both at the end: it never touches the `make up` or `make test` stacks.
BENCH_KAFKA_PORT ?= 28092
BENCH_MONGO_PORT ?= 28017
BENCH_PORT_BASE  ?= 18100
BENCH_STAMP      := $(VENV)/.bench-installed

$(BENCH_STAMP): $(VENV_STAMP) pyproject.toml
	$(VPY) -m pip install -q -e '.[test,bench]'
	@touch $@

bench: $(BENCH_STAMP) ## every goal of issue 14 in one table beside its baseline (own stack); BENCH_ARGS='--full' for all rows
	$(VPY) -m bench.run --kafka-port $(BENCH_KAFKA_PORT) --mongo-port $(BENCH_MONGO_PORT) \
	  --port-base $(BENCH_PORT_BASE) $(BENCH_ARGS)

bench-metrics: venv ## does the customer-experience projection keep up? (against the `make up` stack; BENCH_ARGS='--rate 33 --seconds 60')
	$(VPY) -m bench.metrics $(BENCH_ARGS)

bench-roundtrip: venv ## the round-trip bench alone (raw Kafka, one kernel hop, the store) against the `make up` stack
	$(VPY) -m bench.roundtrip $(BENCH_ARGS)

docs: venv ## regenerate docs/asyncapi.json, docs/schemas/ and docs/configuration.md from the code
	$(VPY) -m contracts.schema
	$(VPY) -m tools.configuration_doc
