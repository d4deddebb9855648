package boot

import (
	"encoding/binary"
	"fmt"
)

// encode returns the fixed-size value v (a pointer to a struct mirroring a
// kernel or firmware structure) in the guest's little-endian byte order,
// without padding, as encoding/binary lays out structs. The C structures
// mirrored here are either packed or naturally aligned without holes, so
// the bytes match theirs.
func encode(v any) []byte {
	b, err := binary.Append(nil, binary.LittleEndian, v)
	if err != nil {
		// Only the fixed-size types of this package are encoded.
		panic(fmt.Sprintf("boot: encoding %T: %v", v, err))
	}
	return b
}

// checksum returns the byte that makes the bytes of b, with it added, sum to
// zero modulo 256: the checksum of the MP specification's structures.
func checksum(b []byte) uint8 {
	var sum uint8
	for _, c := range b {
		sum += c
	}
	return -sum
}
