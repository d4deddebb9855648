# tracevisor — top-level build. Everything lands in $(BUILD) (ignored by git).
#
#   make demo         build all, boot a two-node failover cluster (active + standby
#                     with httpd), kill the active's httpd, show the probe event, the
#                     verdict, the fence, the address move, the standby's first answer
#                     and the 10 s heartbeat beside it; ends by itself (root, /dev/kvm)
#   make demo-guest   build all, boot one guest, run a command in it
#   make test         build all, run every test (unit + real-guest end-to-end)
#   make bench-boot   median boot-to-init time over N boots, VMM RSS beyond guest RAM
#   make bench-virtio virtio-blk and virtio-net throughput as ratios to host baselines
#   make bench-probe  probe-hit -> VMM latency, armed-catalogue overhead, event storm
#   make bench-snapshot  cold boot vs restore to httpd answering (256M and 2G guests),
#                     snapshot time, two clones' shared guest pages (root: a netns)
#   make bench-failover  the seed paper's Tables 1-2: N runs (default 100) of a killed
#                     httpd and of an OOM in two clusters (10 s heartbeat vs probes);
#                     CSV, tables and CDF plot in build/bench-failover (root, /dev/kvm)
#   make bench-pacemaker  the same through a real two-node Pacemaker + Corosync
#                     cluster (namespaces): its 10 s monitor vs the fast path, and
#                     a lost node; N runs (default 10) (root, /dev/kvm, pacemaker)
#   make install-pcmk install the vmm, the guest and tvpcmk as ocf:tracevisor:vm
#                     and stonith:fence_tracevisor (root)
#   make guest-kernel / initramfs / vmm / cluster / tvpcmk   the pieces

BUILD ?= build
GO ?= go
export TRACEVISOR_BUILD := $(abspath $(BUILD))

.PHONY: all vmm cluster tvpcmk install-pcmk pcmk-deps demo-guest guest-kernel initramfs demo test unit-test fuzz-short bench-boot bench-virtio bench-probe bench-snapshot bench-failover bench-pacemaker clean

# Fuzz targets (package:Target). `make test` runs each for FUZZTIME; their
# seed corpora (testdata/fuzz) also run as plain tests.
FUZZ_TARGETS = ./virtio/queue:FuzzPop ./virtio/blk:FuzzParseRequest ./virtio/net:FuzzStreamRecv \
	./wire:FuzzDecode ./probe:FuzzParseSpec ./snapshot:FuzzRead ./virtio/mmio:FuzzRestore \
	./vmm/elfcore:FuzzKernelMappings
FUZZTIME ?= 10s

all: vmm cluster tvpcmk guest-kernel initramfs $(BUILD)/hostile

vmm: $(BUILD)/vmm

cluster: $(BUILD)/cluster

tvpcmk: $(BUILD)/tvpcmk

$(BUILD)/tvpcmk: $(shell find . -path ./build -prune -o -name "*.go" -not -name "*_test.go" -print) go.mod go.sum
	@mkdir -p $(BUILD)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags=-s -o $@ ./cmd/tvpcmk

# Pacemaker integration: the vmm, the guest kernel, the initramfs and
# tvpcmk into PCMK_LIB; tvpcmk linked as the OCF agent ocf:tracevisor:vm
# and as the stonith agent fence_tracevisor (root).
PCMK_LIB ?= /usr/local/lib/tracevisor
OCF_ROOT ?= /usr/lib/ocf
install-pcmk: all
	install -D -m 0755 $(BUILD)/vmm $(PCMK_LIB)/vmm
	install -D -m 0755 $(BUILD)/tvpcmk $(PCMK_LIB)/tvpcmk
	install -D -m 0644 $(BUILD)/guest-kernel/vmlinux $(PCMK_LIB)/guest-kernel/vmlinux
	install -D -m 0644 $(BUILD)/initramfs.cpio $(PCMK_LIB)/initramfs.cpio
	install -d $(OCF_ROOT)/resource.d/tracevisor
	ln -sf $(PCMK_LIB)/tvpcmk $(OCF_ROOT)/resource.d/tracevisor/vm
	ln -sf $(PCMK_LIB)/tvpcmk /usr/sbin/fence_tracevisor
	@echo "installed: ocf:tracevisor:vm ($(OCF_ROOT)/resource.d/tracevisor/vm), stonith:fence_tracevisor (/usr/sbin/fence_tracevisor)"

$(BUILD)/cluster: $(shell find . -path ./build -prune -o -name "*.go" -not -name "*_test.go" -print) go.mod go.sum
	@mkdir -p $(BUILD)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags=-s -o $@ ./cmd/cluster

$(BUILD)/vmm: $(shell find . -path ./build -prune -o -name "*.go" -not -name "*_test.go" -print) go.mod go.sum
	@mkdir -p $(BUILD)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags=-s -o $@ ./cmd/vmm

# The kernel script installs its own apt packages and skips unchanged inputs.
guest-kernel:
	guest-kernel/build.sh $(BUILD)/guest-kernel

include guest-kernel/init/rules.mk
include guest-kernel/hostile/rules.mk

initramfs: $(BUILD)/initramfs.cpio

demo: all
	$(BUILD)/cluster demo --vmm $(BUILD)/vmm

demo-guest: all
	$(BUILD)/vmm run -- sh -c 'echo "hello from the tracevisor guest: $$(uname -sr), 6*7=$$((6*7))"'

unit-test:
	$(GO) vet ./...
	$(GO) test -short ./...

# Unit tests run under the race detector; the end-to-end package (real
# guests, tests/) runs once without it.
E2E_PKG = ./tests/
# The Pacemaker tests and bench-pacemaker stand up a real cluster: its
# packages are installed here when missing, as the guest's are by their
# recipes (root; Debian).
PCMK_TOOLS = pacemakerd:pacemaker corosync:corosync crm:crmsh fence_dummy:fence-agents \
	ocf-tester:resource-agents xmllint:libxml2-utils
pcmk-deps:
	@need=""; for t in $(PCMK_TOOLS); do command -v $${t%%:*} >/dev/null 2>&1 || need="$$need $${t##*:}"; done; \
	if [ -n "$$need" ]; then echo "pcmk-deps: installing$$need"; $(call tv_apt_install,$$need); fi

test: all pcmk-deps
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m $$($(GO) list ./... | grep -v '/tests$$')
	$(GO) test -count=1 -timeout 40m $(E2E_PKG)
	$(MAKE) --no-print-directory fuzz-short

fuzz-short:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$name ($$pkg) for $(FUZZTIME)"; \
		out=$$($(GO) test -run='^$$' -fuzz="^$$name$$" -fuzztime=$(FUZZTIME) $$pkg 2>&1); rc=$$?; echo "$$out" | tail -5; \
		if [ $$rc -ne 0 ] && echo "$$out" | grep -q 'context deadline exceeded' && ! echo "$$out" | grep -q 'Failing input'; then \
			echo "fuzz $$name: the fuzzer's own deadline passed on a loaded host (no failing input): once more"; \
			$(GO) test -run='^$$' -fuzz="^$$name$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
		elif [ $$rc -ne 0 ]; then echo "$$out"; exit 1; fi; \
	done

bench-boot: all
	$(GO) run ./cmd/bench boot -n $(or $(N),5)

bench-virtio: all
	$(GO) run ./cmd/bench virtio

bench-probe: all
	$(GO) run ./cmd/bench probe -n $(or $(HITS),1000)

bench-snapshot: all
	$(GO) run ./cmd/bench snapshot -n $(or $(N),5)

bench-pacemaker: all pcmk-deps
	$(BUILD)/cluster bench-pacemaker --vmm $(BUILD)/vmm -n $(or $(N),10) --out $(BUILD)/bench-pacemaker

bench-failover: all
	$(BUILD)/cluster bench --vmm $(BUILD)/vmm -n $(or $(N),100) --out $(BUILD)/bench-failover

clean:
	rm -rf $(BUILD)
