# fedmo: make demo runs the default experiment; make test runs every check.
GO      ?= go
VERSION := $(shell git rev-parse HEAD 2>/dev/null || echo devel)
LDFLAGS := -X main.version=$(VERSION)
BIN     := bin/fedmo
# Packages that start goroutines run their tests under the race detector too.
RACE_PKGS := ./engine/... ./simulate/... ./experiment/... ./client/...

.PHONY: all build test race lint bench demo clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/fedmo

lint:
	@out=$$(gofmt -l . ); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

test: lint
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -race -short $(RACE_PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

demo: build
	./$(BIN) demo --out runs/demo

clean:
	rm -rf bin runs
