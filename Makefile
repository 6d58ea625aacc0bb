# aisix — build, run and test. `make run` and `make test` work on a fresh clone.
# The Go release aisix is built and tested with: the go command fetches it
# through the module proxy on first use (about 10 s). A machine's own Go
# (1.26) is too old for go.mod's `go 1.27`, and ignores a toolchain line.
export GOTOOLCHAIN := go1.27.3
GO        ?= go
BIN       ?= bin/aisix
VERSION   ?= 0.1.0
LDFLAGS   := -s -w -X github.com/aisix/aisix/cli.Version=$(VERSION)

.PHONY: all build run demo install test vet fmt fmt-check tidy-check lint fuzz bench bench-micro completions clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/aisix

## run: build, then serve the proxy on 127.0.0.1:3000 and the admin API on 127.0.0.1:3001
## (with the quickstart admin key unless AISIX_ADMIN_KEY is set: serve accepts it on loopback only)
run: build
	AISIX_ADMIN_KEY="$${AISIX_ADMIN_KEY:-admin-local-only-change-me}" ./$(BIN) serve --log-format text

## demo: build, then run `aisix demo`: a gateway, two mock upstreams, traffic and the dashboard
## (1-4 break the primary, 0 restores it, q quits); nothing is left behind
demo: build
	./$(BIN) demo

## install: go install with the build's flags, into $(go env GOBIN) or $(go env GOPATH)/bin
install:
	$(GO) install -trimpath -ldflags '$(LDFLAGS)' ./cmd/aisix
	@dir=$$($(GO) env GOBIN); [ -n "$$dir" ] || dir=$$($(GO) env GOPATH)/bin; echo "installed $$dir/aisix"

## test: formatting, vet, every test under the race detector, every benchmark once (so none rots; timings are not asserted),
## and every fuzz target for FUZZTIME_TEST (1s) each (.ci/fuzz: about 2 minutes on 2 cores)
FUZZTIME_TEST ?= 1s
test: fmt-check vet
	$(GO) test -race -count=1 ./...
	$(GO) test -run '^$$' -bench . -benchtime 1x ./...
	GO='$(GO)' FUZZTIME=$(FUZZTIME_TEST) .ci/fuzz

## fuzz: every fuzz target for FUZZTIME each (default 1m); a crash leaves its input in the package's testdata/fuzz/FuzzX/
FUZZTIME ?= 1m
fuzz:
	GO='$(GO)' FUZZTIME=$(FUZZTIME) .ci/fuzz

## lint: staticcheck and govulncheck at pinned versions (.ci/lint installs them; govulncheck's database from
## vuln.go.dev, else built from the golang.org/x/vulndb module, else skipped with one line)
lint:
	GO='$(GO)' .ci/lint

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

tidy-check:
	$(GO) mod tidy && git diff --exit-code go.mod go.sum

## bench: the benchmark rig (e2e/bench): aisix against direct-to-mock, and nginx when installed; a markdown table on stdout
## quick run: make bench BENCH_ARGS="-runs 1 -duration 5s"
## with Redis: make bench REDIS=1 (also aisix --redis on a redis-server it starts, when installed: what shared limits add per request)
BENCH_ARGS ?=
bench:
	$(GO) run ./e2e/bench/cmd/benchrun -go '$(GO)' $(if $(REDIS),-redis) $(BENCH_ARGS)

## bench-micro: hot-path micro-benchmarks with allocations
bench-micro:
	$(GO) test -run '^$$' -bench . -benchmem ./proxy/... ./storage/...

completions: build
	./$(BIN) completion bash > completions/aisix.bash
	./$(BIN) completion zsh > completions/_aisix
	./$(BIN) completion fish > completions/aisix.fish
	./$(BIN) completion powershell > completions/aisix.ps1

clean:
	rm -rf bin
