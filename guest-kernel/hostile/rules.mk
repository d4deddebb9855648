# The guest's hostile virtio driver for tests/hostile_test.go: a static
# guest program (built like the guest's init) that drives the virtio-mmio
# devices from user space with bad rings, registers and requests.
#
# Included from the top-level Makefile (paths relative to the repository
# root); uses INIT_CC and INIT_CFLAGS from guest-kernel/init/rules.mk.
#
#   $(BUILD)/hostile   guest-kernel/hostile/hostile.c, statically linked

GUEST_HOSTILE_SRC := guest-kernel/hostile/hostile.c
GUEST_HOSTILE_HDR := guest-kernel/probe/tracevisor_probe.h guest-kernel/hostile/include/linux/types.h

# Order-only on $(BUILD)/init, whose rule installs musl-gcc where it is missing.
$(BUILD)/hostile: $(GUEST_HOSTILE_SRC) $(GUEST_HOSTILE_HDR) | $(BUILD)/init
	$(INIT_CC) $(INIT_CFLAGS) -I guest-kernel/hostile/include -I guest-kernel/probe -o $@ $(GUEST_HOSTILE_SRC)
