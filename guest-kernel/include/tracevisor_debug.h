/* SPDX-License-Identifier: MIT */
/*
 * tracevisor debug device: one 4 KiB MMIO page through which the guest's init
 * tells the VMM when it started (the boot timer) and how the command it ran
 * ended. Registers are 32-bit, little-endian, naturally aligned.
 *
 * The Go side (vmm/devices/debugport) checks these values against this file
 * in its tests: this header is the single definition of the layout.
 */
#ifndef TRACEVISOR_DEBUG_H
#define TRACEVISOR_DEBUG_H

/* Guest-physical base of the page, inside the MMIO hole below 4 GiB. */
#define TV_DEBUG_BASE 0xd0000000UL
#define TV_DEBUG_SIZE 0x1000UL

/* Read: TV_DEBUG_MAGIC_VALUE ("TVSR"), so a guest can tell it is there. */
#define TV_DEBUG_REG_MAGIC 0x00
#define TV_DEBUG_MAGIC_VALUE 0x52535654U

/* Write: an event code; the VMM timestamps each write on arrival. */
#define TV_DEBUG_REG_EVENT 0x04
#define TV_DEBUG_EVENT_INIT_START 0x1  /* init's first instruction ran */
#define TV_DEBUG_EVENT_CMD_START 0x2   /* the command was exec'd */

/*
 * Write: the exit status of the command init ran: 0-255 for a normal exit,
 * 128+N when signal N ended it. The VMM exits with it after the guest stops.
 */
#define TV_DEBUG_REG_EXIT_STATUS 0x08

#endif
