# vault-plugin-secrets-concur
#
#   make build   plugin binary in bin/, version stamped
#   make test    everything CI runs: vet, unit tests with -race, brief fuzzing, end-to-end tests against real Vault
#   make dev     simulator + Vault dev server + engine mounted at concur/, ready to try
#   make fmt     gofmt the tree;  make lint: go vet + staticcheck

SHELL        := /bin/bash
MODULE       := github.com/concur-vault/vault-plugin-secrets-concur
VERSION      ?= v0.1.0
PLUGIN_NAME  := vault-plugin-secrets-concur
BIN          := $(CURDIR)/bin
PLUGIN_BIN   := $(BIN)/$(PLUGIN_NAME)
LDFLAGS      := -s -w -X $(MODULE)/backend.Version=$(VERSION)
FUZZTIME     ?= 10s
GO_PKGS      := ./...

.PHONY: build sim test unit fuzz e2e fmt lint dev vault clean

build:
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o $(PLUGIN_BIN) ./cmd/$(PLUGIN_NAME)

sim:
	CGO_ENABLED=0 go build -trimpath -o $(BIN)/concur-sim ./cmd/concur-sim

test: lint unit fuzz e2e

unit:
	go test -race -count=1 $(GO_PKGS)

# Each fuzz target runs briefly; the committed corpora in testdata/fuzz run as plain tests in `unit`.
fuzz:
	@set -e; for pkg in $$(go list ./...); do \
	  for t in $$(go test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$t"; go test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

fmt:
	gofmt -w $$(git ls-files '*.go')

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt needed (make fmt)'; exit 1; }
	go vet $(GO_PKGS)
	go tool -modfile=tools/go.mod staticcheck $(GO_PKGS)

# Vault server/CLI built once from tools/ (version pinned there) into bin/vault; skipped when present.
vault:
	@scripts/vault.sh >/dev/null

# Simulator + `vault server -dev` + engine at concur/ configured against the simulator. Ctrl-C stops it all.
dev:
	VERSION=$(VERSION) scripts/dev.sh

# End-to-end tests against real Vault servers (module e2e/). E2E_RUN=Regexp selects tests.
E2E_TIMEOUT  ?= 15m
E2E_RUN      ?= .
E2E_PARALLEL ?= 3
E2E_FLAGS    ?= -v
PLUGIN_BIN_V2 := $(BIN)/$(PLUGIN_NAME)-v0.1.1
e2e: vault build
	$(MAKE) --no-print-directory build VERSION=v0.1.1 PLUGIN_BIN=$(PLUGIN_BIN_V2)
	cd e2e && go vet ./...
	cd e2e && VAULT_BIN=$(BIN)/vault PLUGIN_BIN=$(PLUGIN_BIN) PLUGIN_BIN_V2=$(PLUGIN_BIN_V2) \
	  go test -count=1 -timeout $(E2E_TIMEOUT) -parallel $(E2E_PARALLEL) -run '$(E2E_RUN)' $(E2E_FLAGS) ./...

clean:
	rm -rf $(BIN)
