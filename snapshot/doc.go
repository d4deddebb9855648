// Package snapshot is the on-disk format of a snapshot of a running guest
// (issue 12): the guest's memory as a raw file that restore maps
// copy-on-write, and a versioned, self-describing state file into which each
// layer (vCPUs, VM, devices, the probe host) writes its own named sections.
//
// It is a leaf package: it knows nothing of vCPUs or devices. Callers hand it
// values (JSON-encoded) or raw bytes under names of their choosing, and get
// them back only from a file that passed every check.
//
// # Directory
//
// A snapshot is a directory holding two files:
//
//	state.tvsnap  the state file (below)
//	memory.raw    guest RAM, raw, one region after another
//
// memory.raw's size is a multiple of PageSize (4096). Each RAM region sits at
// a page-aligned offset recorded in the state file's header, so restore maps
// each region MAP_PRIVATE from the file (MapMemory): restore time does not
// grow with guest RAM, pages are read on first touch, and two guests restored
// from one snapshot share the page cache's clean pages; a guest's write
// copies the page into that guest alone and never reaches the file. Pages
// that were all zero at snapshot time are holes (never written), so a mostly
// empty guest costs little disk. Save writes memory.raw before the state file
// and each one under a temporary name renamed into place: a directory with a
// state file is complete, and rewriting a snapshot never truncates a
// memory.raw that a running clone still maps.
//
// # State file
//
// All integers are little-endian. The file is a 16-byte preamble, then
// records: exactly one header record, zero or more section records, exactly
// one end record, and nothing after it.
//
//	preamble
//	  0   8  magic: 0x89 'T' 'V' 'S' 'N' 'A' 'P' 0x0A
//	  8   4  format version (uint32): 1 (FormatVersion)
//	 12   4  reserved, zero
//
//	record
//	  0   1  kind: 'H' (0x48) header, 'S' (0x53) section, 'E' (0x45) end
//	  1   1  encoding of the payload: 'J' (0x4A) one JSON value (UTF-8),
//	         'B' (0x42) raw bytes
//	  2   1  name length n: 0 for 'H' and 'E', 1..64 for 'S'
//	  3   1  reserved, zero
//	  4   4  payload length p (uint32)
//	  8   n  name: bytes of [a-z0-9/._-]
//	8+n   p  payload
//	8+n+p 4  CRC32C (Castagnoli) of the record's bytes 0 .. 8+n+p
//
// The header record ('H', 'J', at most 64 KiB) is a JSON object:
//
//	{
//	  "vmm_version":   "v0.3.1",        // the VMM that wrote it, non-empty
//	  "profile":       "hardware",      // the host profile, non-empty
//	  "config":        {...},           // canonical JSON of the configuration
//	  "config_sha256": "<64 hex>",      // SHA-256 of the config bytes as stored
//	  "created":       "<RFC 3339>",    // optional, informational
//	  "memory": [                       // memory.raw's layout, at most 64 regions
//	    {"gpa": 0, "offset": 0, "size": 268435456, "crc32c": 1234}
//	  ]
//	}
//
// Canonical JSON: the configuration marshalled by encoding/json, then every
// object's keys sorted, no insignificant space, no HTML escaping. Memory
// regions have page-aligned gpa, offset and size, size > 0, and neither
// their guest ranges nor their file ranges overlap; memory.raw is exactly as
// long as the highest offset+size. crc32c is the CRC32C of the region's
// bytes, for VerifyMemory (restore does not read the whole file).
//
// A section record ('S', 'J' or 'B', at most 64 MiB) carries one layer's
// state; names are unique within a file (at most 4096 sections, 256 MiB of
// payload in all). A 'J' payload is one JSON value that the reader decodes
// with unknown fields refused, so a snapshot from another layout of a
// section is refused rather than half-read.
//
// The end record ('E', 'B', 8-byte payload) holds the number of section
// records (uint32) and the CRC32C of every byte of the file before the end
// record (uint32): a lost, added or spliced record is refused.
//
// # Reading
//
// Read parses and verifies the whole file (magic, version, every length
// against its bound before allocating, every CRC, names, the end record, no
// trailing bytes, the header and memory layout) and then the caller's
// expectations (VMM version, host profile, configuration fingerprint)
// before it returns anything, so a caller can never half-restore. Errors
// wrap the sentinels in errors.go; a refused expectation is a
// *MismatchError naming both sides.
package snapshot
