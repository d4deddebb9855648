// Package boot loads an x86-64 Linux kernel into guest RAM and describes the
// boot CPU's register state at the kernel's entry point.
//
// Two kernel formats are accepted, told apart by content (see Detect):
//
//   - an uncompressed ELF vmlinux, entered through the PVH boot protocol
//     (Xen's hvm_start_info, arch/x86/platform/pvh) in 32-bit protected mode;
//   - a bzImage, entered through the Linux 64-bit boot protocol
//     (Documentation/arch/x86/boot.rst) in long mode with identity paging.
//
// Load writes everything the kernel needs before its first instruction: the
// kernel itself, the initrd, the command line, the boot information structure
// of the chosen protocol (hvm_start_info or boot_params) with the E820 memory
// map, the Intel MultiProcessor Specification table that tells the kernel
// about the CPUs and the IOAPIC, a boot GDT and, for the 64-bit protocol, the
// identity page tables. It returns the boot CPU's registers as a plain CPU
// value; converting them to KVM's structures is the VMM's job.
//
// All boot structures live in the first 64 KiB of guest RAM, which Linux
// never gives to its page allocator (it reserves at least that much low
// memory, CONFIG_X86_RESERVE_LOW), except the MP table, which sits in the
// last KiB of base memory where the kernel scans for it. layout.go lists
// every address.
//
// Guest RAM is only touched through guestmem's bounds-checked accessors.
package boot
