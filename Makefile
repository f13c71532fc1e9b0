# Wutong Offline. Run `make help` for the targets.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
DATE     ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS  := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)
ARCHES   := amd64 arm64 loong64
FUZZTIME ?= 50000x
# Minimizing each new input is bounded by a count too: by default it may take 60 s per input, and a target with
# large seeds (FuzzRender) spent minutes minimizing before it ran 50000 inputs.
FUZZMIN ?= 100x
K8S_ARCHES ?= amd64
K8S_ARCH_FLAGS := $(foreach a,$(K8S_ARCHES),--arch $(a))

export CGO_ENABLED = 0

.PHONY: help build build-all test unit fuzz lint cross-test bench bench-upload bench-login bench-deploy demo clean

help:
	@echo "make demo        build, sign, verify, inspect, split and extract a demo bundle (offline)"
	@echo "make test        lint, unit and integration tests (integration needs root), short fuzz runs"
	@echo "make build       bin/wtctl for this machine"
	@echo "make build-all   dist/wtctl-linux-{amd64,arm64,loong64}, static"
	@echo "make cross-test  unit tests for arm64 and loong64 under qemu-user-static"
	@echo "make bench       benchmarks side by side with tar|zstd, sha256sum, skopeo and scp, logins under attack -> docs/benchmarks.md"
	@echo "make e2e         from-source bundle installed on 2 qemu VMs, killed and resumed, checked, reset (root, ~1 h)"
	@echo "make k8s-bundle  Kubernetes, etcd, coredns, containerd, crictl from source (K8S_ARCHES=\"amd64 loong64\")"
	@echo "make k8s-controlplane  etcd, kube-apiserver, controller-manager, scheduler, kubectl and kwok for platform/kubetest"

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/wtctl ./cmd/wtctl
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/wutong ./cmd/wutong

build-all:
	@for a in $(ARCHES); do \
		for c in wtctl wutong; do \
			echo "build dist/$$c-linux-$$a"; \
			GOOS=linux GOARCH=$$a $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/$$c-linux-$$a ./cmd/$$c || exit 1; \
		done; \
	done

test: lint unit fuzz

unit:
	CGO_ENABLED=1 $(GO) test -race -count=1 ./...
	$(GO) test -count=1 -run '^TestImportMemoryBounded$$' ./platform/importer/
	$(GO) test -count=1 -run '^TestUnderAttack$$' ./cmd/wutong/

# Short runs of every fuzz target; longer with FUZZTIME=1000000x. The budget is a count, not a duration: with a
# duration, Go 1.26's fuzz coordinator can fail a target with "context deadline exceeded" as time runs out, having
# found nothing (golang/go#75804, fixed in Go 1.27); it failed CI that way once.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseManifest$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMIN) ./bundle/
	$(GO) test -run '^$$' -fuzz '^FuzzReader$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMIN) ./bundle/
	$(GO) test -run '^$$' -fuzz '^FuzzReadHeader$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMIN) ./bundle/parts/
	$(GO) test -run '^$$' -fuzz '^FuzzParseSpec$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMIN) ./bundle/build/
	$(GO) test -run '^$$' -fuzz '^FuzzParseOSRelease$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMIN) ./installer/facts/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMIN) ./installer/cluster/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMIN) ./platform/app/
	$(GO) test -run '^$$' -fuzz '^FuzzRender$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMIN) ./platform/render/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

cross-test:
	WUTONG_LAB=off GOARCH=arm64 $(GO) test -short -count=1 -exec qemu-aarch64-static ./...
	WUTONG_LAB=off GOARCH=loong64 $(GO) test -short -count=1 -exec qemu-loongarch64-static ./...

bench: build
	scripts/bench.sh
	scripts/bench-login.sh
	scripts/bench-deploy.sh
	scripts/bench-upload.sh

bench-login:
	scripts/bench-login.sh

bench-deploy:
	scripts/bench-deploy.sh

bench-upload:
	scripts/bench-upload.sh

demo: build-all build
	scripts/demo.sh

# The end-to-end test: builds the from-source bundle (cached), boots qemu VMs and installs, interrupts, resumes and
# resets a cluster. The timing table is written to E2E_TIMING.
E2E_TIMING ?= /tmp/wutong-e2e-timing.txt
.PHONY: e2e k8s-bundle k8s-controlplane
e2e:
	scripts/vm/deps.sh
	CGO_ENABLED=0 E2E_TIMING=$(E2E_TIMING) $(GO) test -tags e2e -count=1 -timeout 240m -v ./e2e/
	@cat $(E2E_TIMING)

k8s-bundle:   ## build Kubernetes, etcd, coredns, containerd, crictl from source; out: /var/cache/wutong-test/k8s-<ver>-r1
	scripts/k8s/build.sh $(K8S_ARCH_FLAGS)

k8s-controlplane:   ## what platform/kubetest needs (a part of k8s-bundle, and kwok); cached under /var/cache/wutong-test
	scripts/k8s/controlplane.sh

clean:
	rm -rf bin dist demo
