# The two commands of the README:
#   make run    a local Apache Cassandra plus the function on 127.0.0.1:8080
#   make test   every test: unit, integration against the real Cassandra, manifests
# Both start Cassandra through cassandra/local.sh, which reuses a node that
# already answers CQL at CASSANDRA_HOSTS.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c

export LISTEN_ADDRESS ?= 127.0.0.1:8080
export LOG_FORMAT ?= text

.PHONY: run test unit integration cassandra cassandra-stop vet

run: cassandra
	go run ./function/cmd/tracker

test: vet unit cassandra integration

vet:
	go vet ./...
	cd test && go vet ./...

unit:
	go test -count=1 ./...

integration: cassandra
	cd test && go test -count=1 ./...

cassandra:
	cassandra/local.sh start

cassandra-stop:
	cassandra/local.sh stop
