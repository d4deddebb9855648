# Guest user space: the guest's /init and the base initramfs.
#
# Included from the top-level Makefile (paths are relative to the repository
# root), or used alone: make -f guest-kernel/init/rules.mk build/initramfs.cpio
#
#   $(BUILD)/init            guest-kernel/init/init.c, statically linked
#   $(BUILD)/initramfs.cpio  the base initramfs (cmd/mkinitramfs --help)
#
# init is linked against musl by default: 20 KiB instead of glibc's 700 KiB,
# and a handful of start-up system calls instead of about fifteen, which
# counts where guest kernel mode is emulated. INIT_CC=gcc builds it against
# glibc instead. Missing Debian packages (musl-tools, busybox-static) are
# installed with apt-get.

# Keep whatever default goal the including Makefile had.
tv_guest_saved_goal := $(.DEFAULT_GOAL)

BUILD ?= build
GO ?= go
INIT_CC ?= musl-gcc
INIT_CFLAGS ?= -static -Os -s -Wall -Wextra -Werror
GUEST_BUSYBOX ?= /bin/busybox

GUEST_INIT_SRC := guest-kernel/init/init.c
GUEST_INIT_HDR := guest-kernel/include/tracevisor_debug.h
MKINITRAMFS_SRC := $(filter-out %_test.go,$(wildcard cmd/mkinitramfs/*.go guest-kernel/initramfs/*.go)) go.mod go.sum

# apt_install PACKAGE: install a Debian package without questions.
tv_apt_install = apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1) >/dev/null

$(BUILD)/init: $(GUEST_INIT_SRC) $(GUEST_INIT_HDR)
	@mkdir -p $(@D)
ifeq ($(INIT_CC),musl-gcc)
	@command -v musl-gcc >/dev/null 2>&1 || { echo "guest-init: installing musl-tools"; $(call tv_apt_install,musl-tools); }
endif
	$(INIT_CC) $(INIT_CFLAGS) -I guest-kernel/include -o $@ $(GUEST_INIT_SRC)

$(BUILD)/initramfs.cpio: $(BUILD)/init $(MKINITRAMFS_SRC) $(GUEST_BUSYBOX)
	$(GO) run ./cmd/mkinitramfs --busybox $(GUEST_BUSYBOX) --init $(BUILD)/init -o $@

# Only Debian's busybox-static provides the default busybox; another path
# must be provided by whoever chose it.
$(GUEST_BUSYBOX):
	@if [ "$@" != /bin/busybox ]; then echo "guest-init: $@ does not exist (GUEST_BUSYBOX)" >&2; exit 1; fi
	@echo "guest-init: installing busybox-static"
	@$(call tv_apt_install,busybox-static)
	@test -x $@ || { echo "guest-init: busybox-static did not install $@" >&2; exit 1; }

.DEFAULT_GOAL := $(tv_guest_saved_goal)
