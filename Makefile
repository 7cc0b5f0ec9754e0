# Todo CDC outbox pipeline. `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO      ?= go
BIN     := bin
ENVFILE := .state/env
# Load the local stack's generated settings (URLs, passwords, JWT secret) into a recipe.
LOADENV := set -a; . $(ENVFILE); set +a

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z0-9-]+:.*## / {printf "  make %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: install
install: ## install what the local stack needs (PostgreSQL, Kafka, Connect, Debezium, Apicurio)
	scripts/stack.sh install

.PHONY: build
build: ## build the services and pipelinectl into bin/ (stamped with the git revision: pipelinectl version)
	GOFLAGS="$${GOFLAGS:-} -buildvcs=auto" $(GO) build -o $(BIN)/ ./services/...

# Connect workers in the group: make up WORKERS=2 starts a second one on 127.0.0.1:8084
WORKERS ?= 1
# Kafka nodes: make up BROKERS=3 (or make run BROKERS=3) runs three (another cluster than the one-node
# default, replication factor 3); unset = the running cluster's count, one when Kafka is down
BROKERS ?=

.PHONY: up
up: ## start the local stack only (PostgreSQL, Kafka, Apicurio, Connect); WORKERS=2 adds a second Connect worker, BROKERS=3 runs three Kafka nodes
	WORKERS=$(WORKERS) BROKERS=$(BROKERS) scripts/stack.sh up

.PHONY: run
run: build ## start everything: stack, topics, schemas, todo-api, connector, consumers (WORKERS=2, BROKERS=3 as for up)
	WORKERS=$(WORKERS) BROKERS=$(BROKERS) scripts/run.sh

.PHONY: down
down: ## stop the services and the stack; all data is kept
	scripts/services.sh stop
	scripts/stack.sh down

.PHONY: status
status: ## show each component up or down with its address
	@WORKERS=$(WORKERS) BROKERS=$(BROKERS) scripts/stack.sh status || true
	@scripts/services.sh status || true

.PHONY: logs
logs: ## follow the services' logs
	scripts/services.sh logs

.PHONY: token
token: ## print a bearer token for USER on the local stack: make token USER=alice
	@test -f $(ENVFILE) || { echo "no $(ENVFILE): run 'make run' first" >&2; exit 1; }
	@test -x $(BIN)/pipelinectl || $(GO) build -o $(BIN)/ ./services/pipelinectl
	@$(LOADENV); $(BIN)/pipelinectl token --user "$(USER)"

.PHONY: kafka
kafka: ## Kafka's own tools on the local stack, settings filled in: make kafka ARGS='topics --list'
	@scripts/kafka.sh $(ARGS)

.PHONY: unit
unit: rules ## unit tests only (no stack needed)
	$(GO) vet ./...
	$(GO) test ./...
	@# make bench's peer and serde comparison: their own module (watermill, avrov2), compiled and vetted
	cd bench/peer && $(GO) vet ./...
	@# examples/go-consumer: a consumer team's module on the public packages (its own go.mod)
	cd examples/go-consumer && $(GO) vet ./...

.PHONY: rules
rules: ## the Prometheus config and alert rules: promtool check, and the rules' unit tests
	@# promtool comes with Debian's prometheus package, which scripts/stack.sh install adds (a fresh CI machine)
	@command -v promtool >/dev/null || scripts/stack.sh install
	promtool check config monitoring/prometheus.yml monitoring/compose/prometheus.yml
	promtool test rules monitoring/rules_test.yml

.PHONY: e2e
e2e: run ## end-to-end tests against the running local stack (starts it if needed)
	@# The compatibility gate, against the schemas make run registered as the baseline.
	$(LOADENV); $(BIN)/pipelinectl schemas check
	$(LOADENV); $(GO) test -tags e2e -count=1 -p 1 -timeout 30m ./...

.PHONY: check
check: build ## the schema compatibility gate: schemas/*.avsc against the registry (exit 1 if incompatible)
	@test -f $(ENVFILE) || { echo "no $(ENVFILE): run 'make run' first" >&2; exit 1; }
	$(LOADENV); $(BIN)/pipelinectl schemas check --dir schemas

# Time per fuzz target: make fuzz runs each for FUZZTIME, make test (through fuzz-short) for FUZZTIME_SHORT.
FUZZTIME       ?= 2m
FUZZTIME_SHORT ?= 15s

.PHONY: fuzz
fuzz: ## run every fuzz target of the module for FUZZTIME each (default 2m); crashers land in the package's testdata/fuzz
	GO=$(GO) scripts/fuzz.sh $(FUZZTIME)

.PHONY: fuzz-short
fuzz-short: ## run every fuzz target for FUZZTIME_SHORT each (default 15s); part of make test
	GO=$(GO) scripts/fuzz.sh $(FUZZTIME_SHORT)

.PHONY: contract
contract: ## validate contracts/asyncapi.yaml with the AsyncAPI CLI (npm, installed under .state on first use)
	scripts/asyncapi.sh validate

.PHONY: test
test: unit fuzz-short contract e2e chaos-short ## every test: unit, fuzz targets (briefly), the AsyncAPI contract, end-to-end, the short chaos run; fails if any part of the stack cannot start

.PHONY: chaos
chaos: build ## faults one at a time under 200 writes/s, each accounted event by event (table + .chaos/report.json); BROKERS=3 adds the broker faults; CHAOS_ARGS='-faults kafka-kill' etc.
	$(GO) build -o $(BIN)/chaos ./chaos
	BROKERS=$(BROKERS) scripts/chaos.sh $(CHAOS_ARGS)

.PHONY: chaos-short
chaos-short: build ## the shorter make chaos of make test (one broker, fewer events per fault)
	$(GO) build -o $(BIN)/chaos ./chaos
	scripts/chaos.sh -short -out .chaos/short.json

.PHONY: bench
bench: ## the pipeline measured on the local stack (limit, write path, sustained, catch-up, peer, idle, serde): report under .bench/ (BENCH_* variables shorten it; see bench/main.go)
	$(GO) build -o $(BIN)/bench ./bench
	cd bench/peer && $(GO) build -o ../../$(BIN)/bench-peer .
	$(LOADENV); $(BIN)/bench

.PHONY: bench-code
bench-code: ## benchmarks of the code alone (serde, resolution, ...)
	$(GO) test -run '^$$' -bench . -benchmem ./...

.PHONY: bench-e2e
bench-e2e: run ## benchmarks on the running stack: HTTP write path, commit -> Kafka latency percentiles
	$(LOADENV); $(GO) test -tags e2e -run '^$$' -bench . -benchtime 300x ./e2e/
