package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
)

// MaxRequestLine is the longest request line the server reads, newline
// excluded (a request names at most a probe spec; the longest is far
// shorter). A longer line is read to its end without being kept, answered
// with an error Response, and the connection carries on with the next
// line.
const MaxRequestLine = 64 << 10

// eventBuffer is how many events a slow "events" client may lag behind
// before it loses some (counted in the stream's closing line).
const eventBuffer = 4096

// errLineTooLong is readLine's answer to a line beyond its limit.
var errLineTooLong = fmt.Errorf("request line too long: the limit is %d bytes", MaxRequestLine)

// serve answers the requests on c, one line each, until the client stops,
// a request fails to decode or it asks for events.
func (s *Server) serve(c net.Conn) {
	in := bufio.NewReaderSize(c, MaxRequestLine+1)
	for {
		line, err := readLine(in)
		if errors.Is(err, errLineTooLong) {
			s.longLines.Add(1)
			if writeResponse(c, Response{Error: err.Error()}) != nil {
				return
			}
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return // the connection broke, maybe mid-line
		}
		if len(bytes.TrimSpace(line)) == 0 {
			if err != nil {
				return // EOF
			}
			continue
		}
		var req Request
		if jerr := json.Unmarshal(line, &req); jerr != nil {
			writeResponse(c, Response{Error: "bad request: " + jerr.Error()})
			return
		}
		if req.Op == OpEvents {
			s.stream(c, in)
			return
		}
		r := s.call(req)
		werr := writeResponse(c, r)
		if req.Op == OpStop && r.Error == "" {
			s.stopAfter(req)
		}
		if werr != nil || err != nil {
			return
		}
	}
}

// readLine returns the next line of r without its newline, with io.EOF
// (or the read error) when the connection ended after it. A line longer
// than MaxRequestLine (r's buffer size less one) is read to its end and
// dropped: errLineTooLong.
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err == nil {
		return line[:len(line)-1], nil
	}
	if !errors.Is(err, bufio.ErrBufferFull) {
		return line, err
	}
	for errors.Is(err, bufio.ErrBufferFull) {
		_, err = r.ReadSlice('\n')
	}
	return nil, errLineTooLong
}

// writeResponse writes r as one JSON line.
func writeResponse(w io.Writer, r Response) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// stream writes events to the connection until it fails or the host
// closes. in is the connection's reader, which may hold bytes already.
func (s *Server) stream(c net.Conn, in *bufio.Reader) {
	sub := s.h.Subscribe(eventBuffer)
	defer sub.Cancel()
	go func() {
		// The client writes nothing more; its EOF or error ends the stream.
		in.ReadByte()
		sub.Cancel()
	}()
	enc := json.NewEncoder(c)
	for e := range sub.C {
		if err := enc.Encode(e); err != nil {
			return
		}
	}
}
