# vault-plugin-secrets-concur
#
#   make build   plugin binary in bin/, version stamped
#   make test    everything CI runs: lint, unit tests with -race, alert rules, brief fuzzing, end-to-end tests against
#                real Vault, the docs checks, SAP's Postman collections against concur-sim (sap-collections), the
#                reproducibility check (release-check)
#   make dev     simulator + Vault dev server + engine mounted at concur/, ready to try
#   make bench   Go benchmarks + load test of concur/creds vs a minimal plugin (the ceiling) and KV through a real
#                Vault dev server, and a pprof profile of the plugin under that load (docs/performance.md)
#   make rules   the alert rules of docs/alerts.yml checked and unit-tested with promtool (Debian's, pinned)
#   make fmt     gofmt the tree;  make lint: gofmt check, go vet, golangci-lint (.golangci.yml) on every module
#   make release VERSION=vX.Y.Z   static binaries for linux, darwin (amd64, arm64) and windows (amd64), an SBOM
#                each, SHA256SUMS in dist/; then rebuilds elsewhere and compares byte for byte (reproducible)
#   make release-check   the reproducibility check for the host platform (part of make test)
#   make image   the OCI image (layout + tar in dist/) from dist/'s linux binaries, without a container daemon

SHELL        := /bin/bash
MODULE       := github.com/concur-vault/vault-plugin-secrets-concur
VERSION      ?= v0.3.0
PLUGIN_NAME  := vault-plugin-secrets-concur
BIN          := $(CURDIR)/bin
PLUGIN_BIN   := $(BIN)/$(PLUGIN_NAME)
LDFLAGS      := -s -w -X $(MODULE)/backend.Version=$(VERSION)
FUZZTIME     ?= 10s
GO_PKGS      := ./...

.PHONY: build sim ceiling test unit fuzz e2e rules promtool sap-collections fmt lint dev vault clean reliability \
	soak bench release release-check image plugin-v0.1.0

build:
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o $(PLUGIN_BIN) ./cmd/$(PLUGIN_NAME)

sim:
	CGO_ENABLED=0 go build -trimpath -o $(BIN)/concur-sim ./cmd/concur-sim

# The smallest external plugin on the same sdk, which make bench measures the engine against.
ceiling:
	CGO_ENABLED=0 go build -trimpath -o $(BIN)/ceiling ./scripts/ceiling

test: lint unit rules fuzz e2e sap-collections release-check

unit:
	go test -race -count=1 $(GO_PKGS)
	cd e2e && go test -race -count=1 ./loadtest/
	cd scripts/image && go test -race -count=1 ./...

# Each fuzz target runs briefly; the committed corpora in testdata/fuzz run as plain tests in `unit`.
fuzz:
	@set -e; for pkg in $$(go list ./...); do \
	  for t in $$(go test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$t"; go test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

# promtool from Debian's prometheus package, pinned. The binary is taken out of the package rather than
# the package installed: installing it would also start a Prometheus server. Needs apt's package lists
# (fetched once when the pinned version is not found).
PROMETHEUS_DEB := 2.42.0+ds-5+b6
PROMTOOL       := $(BIN)/promtool
promtool: $(PROMTOOL)
$(PROMTOOL):
	rm -rf $(BIN)/prometheus-deb && mkdir -p $(BIN)/prometheus-deb
	cd $(BIN)/prometheus-deb && { apt-get download prometheus=$(PROMETHEUS_DEB) 2>/dev/null || \
	  { apt-get update -qq && apt-get download prometheus=$(PROMETHEUS_DEB); }; }
	dpkg-deb -x $(BIN)/prometheus-deb/prometheus_*.deb $(BIN)/prometheus-deb/root
	cp $(BIN)/prometheus-deb/root/usr/bin/promtool $@ && rm -rf $(BIN)/prometheus-deb
	$@ --version

# The alert rules docs/metrics.md points to: parsed by Prometheus' own rule checker, and each alert fired
# on sample series by the rule unit tests in docs/alerts_test.yml.
rules: $(PROMTOOL)
	$(PROMTOOL) check rules docs/alerts.yml
	cd docs && $(PROMTOOL) test rules alerts_test.yml

# Fault matrix, hostile input and the soak (SOAK_MONTHS simulated months) with -race; their outcome
# records become docs/reliability.md. Fails, leaving the document as it was, when a case fails.
SOAK_MONTHS      ?= 12
RELIABILITY_JSON := $(BIN)/reliability.jsonl
reliability:
	@mkdir -p $(BIN) && rm -f $(RELIABILITY_JSON)
	RELIABILITY_REPORT=$(RELIABILITY_JSON) SOAK_MONTHS=$(SOAK_MONTHS) \
	  go test -race -count=1 -timeout 60m -run '^(TestFaultMatrix|TestHostileInput|TestSoak)$$' ./backend/
	SOAK_MONTHS=$(SOAK_MONTHS) go run ./scripts/reliability -in $(RELIABILITY_JSON) -out docs/reliability.md

# The full soak: 12 simulated months of renewals, faults and reader bursts (CI's `unit` runs 2).
soak:
	SOAK_MONTHS=$(SOAK_MONTHS) go test -race -count=1 -timeout 60m -run '^TestSoak$$' -v ./backend/

fmt:
	gofmt -w $$(git ls-files '*.go')

# golangci-lint is pinned in its own module (tools/lint) so its dependencies stay apart from Vault's in
# tools/go.mod; the first run builds it (about 3 minutes on 2 cores), later runs use the build cache.
GOLANGCI_LINT := go tool -modfile=$(CURDIR)/tools/lint/go.mod golangci-lint
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt needed (make fmt)'; exit 1; }
	go vet $(GO_PKGS)
	cd e2e && go vet ./...
	cd scripts/image && go vet ./...
	$(GOLANGCI_LINT) run $(GO_PKGS)
	cd e2e && $(GOLANGCI_LINT) run ./...
	cd scripts/image && $(GOLANGCI_LINT) run ./...

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
# The upgrade test starts from the real v0.1.0 plugin (its single-entry storage layout): built once
# from that release's commit in git history, stamped v0.1.0; skipped when present.
V010_COMMIT     := 571f2bb
PLUGIN_BIN_V010 := $(BIN)/$(PLUGIN_NAME)-v0.1.0
e2e: vault build $(PLUGIN_BIN_V010) $(PROMTOOL)
	cd e2e && go vet ./...
	cd e2e && VAULT_BIN=$(BIN)/vault PLUGIN_BIN=$(PLUGIN_BIN) PLUGIN_BIN_V010=$(PLUGIN_BIN_V010) \
	  go test -count=1 -timeout $(E2E_TIMEOUT) -parallel $(E2E_PARALLEL) -run '$(E2E_RUN)' $(E2E_FLAGS) .

# SAP's published Postman collections, run unmodified by newman against concur-sim over HTTPS
# (cmd/concur-sim TestSAPPostmanCollections). They are not in this repository: they are read from
# SAP_POSTMAN_DIR (default: shared/postman beside the clone); without them this says so and skips.
# newman is pinned in tools/newman/package-lock.json and installed there by npm ci.
SAP_POSTMAN_DIR ?= $(abspath $(CURDIR)/../shared/postman)
SAP_POSTMAN_FILES := Authentication.postman_collection.json \
  Concur\ Default\ Env.postman_environment.json auth-api-samples-postman-collection.json \
  concur-user-provisioning-postman-collection.json
NEWMAN := $(CURDIR)/tools/newman/node_modules/.bin/newman
sap-collections:
	@missing=""; for f in $(SAP_POSTMAN_FILES); do \
	  test -f "$(SAP_POSTMAN_DIR)/$$f" || missing="$$missing '$$f'"; done; \
	if [ -n "$$missing" ]; then \
	  echo "sap-collections: skipped: SAP's Postman collections are not in $(SAP_POSTMAN_DIR) (missing:$$missing; see docs/concur-sim.md)"; \
	  exit 0; fi; \
	$(MAKE) --no-print-directory $(NEWMAN) && \
	SAP_POSTMAN_DIR="$(SAP_POSTMAN_DIR)" NEWMAN="$(NEWMAN)" \
	  go test -count=1 -run '^TestSAPPostmanCollections$$' -v ./cmd/concur-sim/

$(NEWMAN): tools/newman/package.json tools/newman/package-lock.json
	cd tools/newman && npm ci --no-audit --no-fund
	touch $@

plugin-v0.1.0: $(PLUGIN_BIN_V010)
$(PLUGIN_BIN_V010):
	rm -rf $(BIN)/src-v0.1.0 && mkdir -p $(BIN)/src-v0.1.0
	git archive $(V010_COMMIT) go.mod go.sum cmd backend concur | tar -x -C $(BIN)/src-v0.1.0
	cd $(BIN)/src-v0.1.0 && CGO_ENABLED=0 go build -trimpath \
	  -ldflags '-s -w -X $(MODULE)/backend.Version=v0.1.0' -o $@ ./cmd/$(PLUGIN_NAME)

# Go benchmarks, then concur/creds, companies/<name>/creds, the ceiling plugin's creds and a KV v2
# secret of similar size read side by side through a Vault dev server on loopback, then a pprof profile
# of the plugin under load, then the partner-scale measurements (e2e TestScale*: metrics scrape, start-up,
# raft fail-over). BENCH_DURATION (per target, default 16s), BENCH_CONNS (32), BENCH_GO=0,
# BENCH_PROFILE=0, BENCH_SCALE=0, BENCH_SCALE_HA_COMPANIES=10000. Results in docs/performance/:
# performance-results.{txt,json}, performance-bench.txt, performance-pprof-{cpu,allocs,ceiling}.txt,
# performance-scale.txt.
bench: vault build sim ceiling
	VERSION=$(VERSION) scripts/bench.sh

# Release artifacts in dist/ (scripts/release.sh), then one more build of every platform in another
# directory with an empty build cache, compared byte for byte with dist/ (scripts/release-check.sh).
# VERSION must be given: v + semver.
RELEASE_PLATFORMS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64
release:
	@test -n "$(filter command line environment,$(origin VERSION))" || { echo 'usage: make release VERSION=vX.Y.Z'; exit 1; }
	VERSION=$(VERSION) PLATFORMS="$(RELEASE_PLATFORMS)" scripts/release.sh
	VERSION=$(VERSION) PLATFORMS="$(RELEASE_PLATFORMS)" AGAINST=dist scripts/release-check.sh

# Two builds for the host platform in different directories (the second with an empty build cache),
# compared byte for byte: binary, SBOM, SHA256SUMS. About 3 minutes of CPU on 2 cores (the empty cache).
release-check:
	VERSION=$(VERSION) scripts/release-check.sh

# The OCI image (scripts/image, go-containerregistry): dist/oci (OCI layout) and
# dist/vault-plugin-secrets-concur_<version>_oci.tar from dist/'s linux/amd64 and linux/arm64 binaries,
# each checked against dist/SHA256SUMS; builds those two first when dist/ has no release of VERSION.
image:
	@grep -q '_$(VERSION)_linux_' dist/SHA256SUMS 2>/dev/null || \
	  VERSION=$(VERSION) PLATFORMS="linux/amd64 linux/arm64" scripts/release.sh
	cd scripts/image && go run . -dist $(CURDIR)/dist -version $(VERSION)

clean:
	rm -rf $(BIN) dist tools/newman/node_modules
