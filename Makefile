# picoseg — build, test and demo. `make test` is the test command; `make demo`
# shows the firewall working in a network-namespace lab.

GO      ?= go
BIN     := bin/picoseg
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# What the demo and the tests use, from Debian's packages: the one list that
# `make deps`, `make test` (as root) and CI install from.
DEBIAN_PKGS := nftables iproute2 iperf3 curl nmap hping3 conntrack tcpdump mosquitto mosquitto-clients libcoap3-bin rsyslog rsyslog-gnutls gnutls-bin kmod qemu-user-static fwknop-client dnsmasq-base
# The oldest Go the module builds with (the go line of go.mod): `make test`
# also builds and vets with it, fetched as a toolchain module when missing.
GO_OLDEST ?= 1.24.12

.PHONY: all build test test-deps fmt-check vet vet-oldest cross-if-available unit fuzz demo deps clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/picoseg

# The whole test suite: formatting, vet, every test with the race detector,
# the engine's packages built and tested with the oldest Go the module
# supports, and again under qemu for the routers' architectures (arm64,
# armv6, mipsle, big-endian mips), and the packages built twice (the same
# bytes) and opened as a packager would. As root it first installs what the kernel
# tests and qemu need; as another user those tests skip with a message.
test: test-deps fmt-check vet vet-oldest package-test unit cross-if-available

test-deps:
	@if [ "$$(id -u)" = 0 ] && command -v dpkg >/dev/null 2>&1; then $(MAKE) --no-print-directory deps; \
	else echo "not root: kernel and lab tests will skip (they need root and: $(DEBIAN_PKGS))"; fi

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	GOOS=darwin $(GO) vet ./...

# OpenWrt's and Debian's toolchains are older than the newest Go: prove the
# module still builds and vets with the oldest one it claims.
OLDEST_PKGS := ./pkg/packet ./pkg/flow ./pkg/policy ./pkg/engine ./pkg/config ./pkg/capture ./pkg/replay ./pkg/alert
vet-oldest:
	GOTOOLCHAIN=go$(GO_OLDEST) $(GO) vet ./...
	GOTOOLCHAIN=go$(GO_OLDEST) $(GO) test -count=1 $(OLDEST_PKGS)

# test-cross when qemu-user is there (make test-deps installs it as root).
cross-if-available:
	@if command -v qemu-mips-static >/dev/null 2>&1 || command -v qemu-mips >/dev/null 2>&1; then $(MAKE) --no-print-directory test-cross; \
	else echo "test-cross skipped: no qemu-user here (apt-get install qemu-user-static)"; fi

unit:
	$(GO) test -race -count=1 -timeout 20m ./...

# Short fuzzing runs of every parser (not part of `make test`, whose runs
# replay each fuzz test's seeds).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run XXX -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./pkg/config
	$(GO) test -run XXX -fuzz '^FuzzDecodeIP$$' -fuzztime $(FUZZTIME) ./pkg/packet
	$(GO) test -run XXX -fuzz '^FuzzDecodeEthernet$$' -fuzztime $(FUZZTIME) ./pkg/packet
	$(GO) test -run XXX -fuzz '^FuzzFastIPv4$$' -fuzztime $(FUZZTIME) ./pkg/packet
	$(GO) test -run XXX -fuzz '^FuzzReader$$' -fuzztime $(FUZZTIME) ./pkg/capture
	$(GO) test -run XXX -fuzz '^FuzzReadLeases$$' -fuzztime $(FUZZTIME) ./pkg/inventory
	$(GO) test -run XXX -fuzz '^FuzzEscaping$$' -fuzztime $(FUZZTIME) ./pkg/metrics
	$(GO) test -run XXX -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./pkg/spa
	$(GO) test -run XXX -fuzz '^FuzzSPAKnock$$' -fuzztime $(FUZZTIME) ./pkg/engine
	$(GO) test -run XXX -fuzz '^FuzzDNSParse$$' -fuzztime $(FUZZTIME) ./pkg/appid

# Installs what the lab needs on Debian when missing, builds, and runs the
# demo as root.
deps:
	@if [ "$$(id -u)" != 0 ]; then echo "make deps: run as root (apt-get install $(DEBIAN_PKGS))"; exit 1; fi
	@missing=""; for p in $(DEBIAN_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

demo:
	@if [ "$$(id -u)" != 0 ]; then echo "make demo needs root: it builds network namespaces and an nftables table. Try: sudo make demo"; exit 1; fi
	$(MAKE) deps build
	./$(BIN) demo -c rules/demo.toml

clean:
	rm -rf bin

# The lab benchmark, as root: picoseg against no firewall and against bare
# Go and C NFQUEUE consumers in a namespace lab: throughput in interleaved
# pairs, new flows of several devices and of one device, the kernel path's
# parts side by side, a perf profile, reloads and the Go micro-benchmarks
# (about 10 minutes). Prints a markdown table and writes the same figures to
# bench.json. A figure that misses its goal is reported, not failed. Needs
# iperf3, conntrack, cc and libnetfilter-queue-dev; perf (linux-perf) for
# the profile, which is skipped without it.
.PHONY: bench
bench:
	@if [ "$$(id -u)" != 0 ]; then echo "make bench needs root: it builds network namespaces and an nftables table. Try: sudo make bench"; exit 1; fi
	$(MAKE) deps DEBIAN_PKGS="$(DEBIAN_PKGS) gcc libnetfilter-queue-dev linux-perf"
	$(MAKE) build
	$(GO) build -o bin/picoseg-bench ./bench/cmd/picoseg-bench
	./bin/picoseg-bench -picoseg $(BIN) -json bench.json

# The soak test, as root (not part of `make test`): SOAK (default 10m) of
# mixed flows, a random-source SYN flood, reloads every 5 s alternating good
# and bad policies, two `nft flush ruleset` and one kill -9 with a restart,
# in a namespace lab. It prints its figures and fails if the policy slipped,
# a denied packet reached the LAN host, a legitimate flow was cut, or the
# daemon's memory grew.
SOAK ?= 10m
.PHONY: soak
soak:
	@if [ "$$(id -u)" != 0 ]; then echo "make soak needs root: it builds network namespaces and an nftables table. Try: sudo make soak"; exit 1; fi
	$(MAKE) deps
	PICOSEG_SOAK=$(SOAK) $(GO) test -count=1 -timeout 0 -run '^TestSoak$$' -v ./cmd/picoseg/

# Packages: .deb for Debian / Raspberry Pi OS (amd64, arm64, armhf) and .ipk
# for OpenWrt 23.05 / 24.10, built reproducibly into dist/ with nfpm, a
# build tool pinned in tools/go.mod (not a dependency of picoseg).
.PHONY: package package-test test-cross
bin/nfpm: tools/go.mod tools/go.sum
	cd tools && $(GO) build -o ../bin/nfpm github.com/goreleaser/nfpm/v2/cmd/nfpm

package: bin/nfpm
	GO=$(GO) sh packaging/build.sh bin/nfpm

# Builds the packages a second time, from a copy of the tree in another
# directory, and checks they are the same bytes; then opens them as a
# packager would (packaging/packagetest). As root with dpkg, it also
# installs the .deb on this machine, checks it, and purges it again.
REPRO_DIR ?= /tmp/picoseg-repro
package-test: package
	rm -rf $(REPRO_DIR) && mkdir -p $(REPRO_DIR)
	git ls-files -z | xargs -0 tar -cf - | tar -xf - -C $(REPRO_DIR)
	v=$$(basename dist/picoseg_*_amd64.deb _amd64.deb); \
	cd $(REPRO_DIR) && SOURCE_DATE_EPOCH=$$(git -C $(CURDIR) log -1 --format=%ct) PKG_VERSION=$${v#picoseg_} \
		GO=$(GO) sh packaging/build.sh $(CURDIR)/bin/nfpm >/dev/null
	@if cmp -s $(REPRO_DIR)/dist/SHA256SUMS dist/SHA256SUMS; then echo "reproducible: a second build, in $(REPRO_DIR), gave the same bytes"; rm -rf $(REPRO_DIR); \
	else echo "NOT reproducible:"; diff $(REPRO_DIR)/dist/SHA256SUMS dist/SHA256SUMS; rm -rf $(REPRO_DIR); exit 1; fi
	PICOSEG_PACKAGE_INSTALL=$$( [ "$$(id -u)" = 0 ] && command -v dpkg >/dev/null && echo 1 ) \
		$(GO) test -count=1 -v ./packaging/packagetest/

# The engine's packages cross-built (go test -c) and run under qemu-user for
# arm64, armhf (GOARM=6), mipsle and mips (big-endian), softfloat, as an
# unprivileged user so that kernel tests skip; then `picoseg check` and
# `picoseg replay` of the shared captures must print the same on each.
# Needs qemu-user-static (Debian).
PCAPS ?= ../shared/pcaps
test-cross:
	GO=$(GO) PCAPS=$(PCAPS) sh packaging/test-cross.sh

# The amd64 .deb in a Debian container booted with systemd (debootstrap and
# systemd-nspawn, from Debian's packages and mirror): the hardened unit runs
# the daemon, judges forwarded traffic, reloads, upgrades and removes as on
# a real machine. Root; not part of make test (it fetches a Debian root).
.PHONY: package-test-systemd
package-test-systemd: package
	sh packaging/test-systemd.sh
