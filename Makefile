# fedmo: make demo runs the default experiment; make test runs every check.
GO      ?= go
VERSION := $(shell git rev-parse HEAD 2>/dev/null || echo devel)
LDFLAGS := -X main.version=$(VERSION)
BIN     := bin/fedmo
# Packages that start goroutines run their tests under the race detector too.
RACE_PKGS := ./engine/... ./simulate/... ./experiment/... ./client/... ./coordinator/... ./membership/... ./wire/... ./security/... ./runner/... ./sweep/... ./cmd/...

.PHONY: all build test race lint bench demo clean proto proto-check

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/fedmo

lint:
	@out=$$(gofmt -l . ); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

test: lint
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -race -short $(RACE_PKGS)
	$(GO) test -count=1 -race ./membership/... ./coordinator/...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

demo: build
	./$(BIN) demo --out runs/demo

# proto regenerates proto/fedmo/v1 with the generators pinned in go.mod's
# tool directive and Debian's protoc 3.21.12 (apt-get install protobuf-compiler).
proto:
	@protoc --version | grep -q '3.21.12' || { echo "make proto needs protoc 3.21.12 (apt-get install protobuf-compiler), found: $$(protoc --version)"; exit 1; }
	GOBIN=$(CURDIR)/bin $(GO) install tool
	PATH=$(CURDIR)/bin:$$PATH protoc -I proto \
		--go_out=proto --go_opt=paths=source_relative \
		--go-grpc_out=proto --go-grpc_opt=paths=source_relative \
		proto/fedmo/v1/fedmo.proto

# proto-check fails when the committed generated code differs from a fresh generation.
proto-check: proto
	git diff --exit-code -- proto/

clean:
	rm -rf bin runs
