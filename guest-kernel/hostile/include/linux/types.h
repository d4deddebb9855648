/* SPDX-License-Identifier: MIT */
/*
 * The few <linux/types.h> names tracevisor_probe.h uses, for the guest's
 * hostile-driver program, which is built against musl (no kernel headers).
 * x86-64 is little-endian, so the __le types are plain integers.
 */
#ifndef TRACEVISOR_HOSTILE_LINUX_TYPES_H
#define TRACEVISOR_HOSTILE_LINUX_TYPES_H

#include <stdint.h>

typedef uint8_t __u8;
typedef uint16_t __u16;
typedef uint32_t __u32;
typedef uint64_t __u64;
typedef uint16_t __le16;
typedef uint32_t __le32;
typedef uint64_t __le64;

#endif
