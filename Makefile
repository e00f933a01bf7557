# The two commands of the README:
#   make run    a local Apache Cassandra plus the function on 127.0.0.1:8080
#   make test   every test: unit, integration against the real Cassandra, manifests
# Both start Cassandra through cassandra/local.sh, which reuses a node that
# already answers CQL at CASSANDRA_HOSTS.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c

export LISTEN_ADDRESS ?= 127.0.0.1:8080
export LOG_FORMAT ?= text

.PHONY: run test unit integration cassandra cassandra-stop jaeger queue-proxy vet fuzz

# make run's metrics listener: loopback, like its serving port.
run: export METRICS_ADDRESS ?= 127.0.0.1:9464
run: cassandra
	go run ./function/cmd/tracker

test: vet unit cassandra integration

vet:
	go vet ./...
	cd test && go vet ./...

unit:
	go test -count=1 ./...

# The fault suite runs after the others, alone: it measures recovery
# times and latency bounds, which the other packages (a real Prometheus
# and Jaeger, a flood of requests) would otherwise share two cores with.
# The cluster suite runs last, alone too: its three Cassandra nodes
# (cassandra/local.sh's cluster mode, started and stopped by the suite)
# take most of the machine. It takes 9-10 minutes on two cores.
integration: cassandra jaeger queue-proxy
	cd test && go test -count=1 $$(go list ./... | grep -v -e '/faults$$' -e '/cluster$$')
	cd test && go test -count=1 ./faults/
	cd test && go test -count=1 -timeout 25m ./cluster/

cassandra:
	cassandra/local.sh start

cassandra-stop:
	cassandra/local.sh stop

# Jaeger, the trace backend the tests send spans to, is a go tool of
# test/jaeger's module; go tool -n builds it into the Go build cache and
# prints its path. The first build on a machine compiles the OpenTelemetry
# Collector and takes minutes, more than go test's default timeout on two
# cores, so it happens here rather than inside a test; later it is a
# cache hit of seconds.
jaeger:
	cd test/jaeger && go tool -n jaeger >/dev/null

# Knative's queue-proxy (knative.dev/serving/cmd/queue), which the
# queueproxy suite and the bench's -queue-proxy mode put in front of the
# function, is a go tool of test/queueproxy/queue's module: built with
# the OpenTelemetry release serving was built with, which test/'s own
# dependencies would replace. Its first build takes about 2 minutes.
queue-proxy:
	cd test/queueproxy/queue && go tool -n queue >/dev/null

# make fuzz runs each fuzz target for FUZZTIME (go test takes one target
# at a time): the decoders through the handler, and the fast JSON path
# against the general one. .ci/run runs it. make test runs their seed
# corpora (function/testdata/fuzz, and the seeds in the code) as ordinary
# tests. Go 1.26's fuzzing coordinator can fail a run with a bare "context
# deadline exceeded" as FUZZTIME ends (go.dev/issue/75804, fixed in Go
# 1.27); that failure, with no failing input written, is reported and not
# counted.
FUZZTIME ?= 20s
# package:target
FUZZ_TARGETS := ./function/:FuzzPlainObject ./function/:FuzzPlainBatch ./function/:FuzzStructuredCloudEvent \
	./function/:FuzzCloudEventsBatch ./function/:FuzzBinaryCloudEvent ./function/event/:FuzzFlatJSONAgrees

fuzz:
	out="$$(mktemp)"; trap 'rm -f "$$out"' EXIT; \
	for entry in $(FUZZ_TARGETS); do \
		pkg="$${entry%%:*}"; target="$${entry#*:}"; \
		if go test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s "$$pkg" 2>&1 | tee "$$out"; then \
			continue; \
		fi; \
		if grep -qx '    context deadline exceeded' "$$out" && ! grep -q 'Failing input written' "$$out"; then \
			echo "fuzz: $$target: ignoring Go's end-of-fuzztime race (go.dev/issue/75804); no failing input"; \
		else \
			exit 1; \
		fi; \
	done
