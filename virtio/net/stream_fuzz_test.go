package net

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

type readOnly struct{ io.Reader }

func (readOnly) Write(p []byte) (int, error) { return len(p), nil }
func (readOnly) Close() error                { return nil }

// FuzzStreamRecv feeds arbitrary bytes as a peer vmm's side of a switch
// socket: Recv must never panic, never return more than the buffer or a
// frame above MaxFrameLen, and end with an error once the bytes run out.
func FuzzStreamRecv(f *testing.F) {
	frame := func(b []byte) []byte {
		var h [4]byte
		binary.BigEndian.PutUint32(h[:], uint32(len(b)))
		return append(h[:], b...)
	}
	f.Add(frame(bytes.Repeat([]byte{0xaa}, 60)))
	f.Add(append(frame([]byte("short")), frame(bytes.Repeat([]byte{1}, 1600))...))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 2})
	f.Fuzz(func(t *testing.T, in []byte) {
		s := NewStream(readOnly{bytes.NewReader(in)})
		buf := make([]byte, 2048)
		// Every frame takes at least its 4-byte length prefix.
		for i := 0; i <= len(in)/4+1; i++ {
			n, err := s.Recv(buf)
			if err != nil {
				if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, ErrProtocol) || errors.Is(err, ErrClosed) {
					return
				}
				t.Fatalf("Recv: unexpected error %v", err)
			}
			if n < 0 || n > len(buf) {
				t.Fatalf("Recv returned %d for a %d-byte buffer", n, len(buf))
			}
		}
		t.Fatalf("Recv returned more frames than %d bytes can hold", len(in))
	})
}
