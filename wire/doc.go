// Package wire is the Go mirror of the tracevisor probe device's messages,
// defined once in guest-kernel/probe/tracevisor_probe.h. Every constant and
// struct layout here is checked against that header by a test that compiles
// a C program with it (cross_c_test.go): sizes, offsets, constant values and
// encoded bytes in both directions.
//
// A message is little-endian, starts with an 8-byte header (type, len, seq)
// and is exactly the size of its C struct. MarshalBinary validates a message
// and encodes it; Decode reads any message (a host command or a guest
// message) and applies the same validation, so what one side accepts the
// other produces. Padding and the bytes after a string's NUL are written as
// zero and ignored when read.
package wire
