package api

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

func TestLongRequestLineIsAnswered(t *testing.T) {
	_, sock := serve(t)
	c, err := Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.c.SetDeadline(time.Now().Add(10 * time.Second))
	// Four times the limit: the client's write only completes if the
	// server reads the whole line.
	_, err = c.Call(Request{Op: OpAttach, Spec: strings.Repeat("x", 4*MaxRequestLine)})
	if err == nil || !strings.Contains(err.Error(), "too long") || !strings.Contains(err.Error(), fmt.Sprint(MaxRequestLine)) {
		t.Fatalf("overlong request: error %v, want one saying it is too long and the limit", err)
	}
	// The connection carries on.
	if _, err := c.Call(Request{Op: OpList}); err != nil {
		t.Fatalf("request after the overlong one: %v", err)
	}
}

func TestRequestLineAtTheLimitIsRead(t *testing.T) {
	_, sock := serve(t)
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	req := `{"op":"list"}`
	req += strings.Repeat(" ", MaxRequestLine-len(req))
	fmt.Fprintf(c, "%s\n", req)
	var r Response
	in := bufio.NewScanner(c)
	if !in.Scan() {
		t.Fatalf("no answer: %v", in.Err())
	}
	if err := json.Unmarshal(in.Bytes(), &r); err != nil || r.Error != "" || r.Host == nil {
		t.Fatalf("a %d-byte request line: %s (%v)", MaxRequestLine, in.Bytes(), err)
	}
}

func TestConnectionsBeyondTheLimitAreRefused(t *testing.T) {
	_, sock := serve(t)
	var clients []*Client
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for range MaxConns {
		c, err := Dial(sock)
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		c.c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Call(Request{Op: OpList}); err != nil { // served, so counted
			t.Fatal(err)
		}
	}
	extra, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	extra.SetDeadline(time.Now().Add(5 * time.Second))
	in := bufio.NewScanner(extra)
	if !in.Scan() {
		t.Fatalf("connection %d: no answer (%v), want a refusal", MaxConns+1, in.Err())
	}
	if !strings.Contains(in.Text(), "too many connections") {
		t.Fatalf("connection %d: %s", MaxConns+1, in.Text())
	}
	// A freed slot serves again.
	clients[0].Close()
	clients = clients[1:]
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, err := Call(sock, Request{Op: OpList})
		if err == nil && r.Host != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a client left: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
