package queue_test

import (
	"encoding/binary"
	"fmt"

	"github.com/tracevisor/tracevisor/guestmem"
	"github.com/tracevisor/tracevisor/virtio/queue"
)

// A device's service loop: pop every available chain, consume the readable
// bytes, fill the writable ones, return the chain, then interrupt if the
// driver wants it.
func Example() {
	ram := make([]byte, 64<<10)
	mem := guestmem.FromRegions(guestmem.Region{GPA: 0, Host: ram})

	// What the driver would do: one chain (a readable request, a writable
	// response buffer) published in an 8-entry queue.
	const descAddr, availAddr, usedAddr = 0x1000, 0x2000, 0x3000
	le := binary.LittleEndian
	copy(ram[0x8000:], "ping")
	le.PutUint64(ram[descAddr:], 0x8000)
	le.PutUint32(ram[descAddr+8:], 4)
	le.PutUint16(ram[descAddr+12:], queue.DescFNext)
	le.PutUint16(ram[descAddr+14:], 1)
	le.PutUint64(ram[descAddr+16:], 0x9000)
	le.PutUint32(ram[descAddr+24:], 16)
	le.PutUint16(ram[descAddr+28:], queue.DescFWrite)
	le.PutUint16(ram[availAddr+4:], 0) // ring[0] = head 0
	le.PutUint16(ram[availAddr+2:], 1) // idx = 1

	// What the transport does when the driver configures the queue.
	q := queue.New(256)
	q.SetSize(8)
	q.SetDescAddr(descAddr)
	q.SetAvailAddr(availAddr)
	q.SetUsedAddr(usedAddr)
	q.SetReady(true)
	if err := q.Activate(mem); err != nil {
		fmt.Println("activate:", err)
		return
	}

	for {
		c, err := q.Pop(mem)
		if err != nil {
			fmt.Println("bad chain:", err) // set DEVICE_NEEDS_RESET
			return
		}
		if c == nil {
			break
		}
		req, _ := c.ReadAllMax(mem, 64) // this device's requests are small
		n, _ := c.WriteAt(mem, []byte("pong:"+string(req)), 0)
		used, _ := q.AddUsed(mem, c, uint32(n))
		fmt.Printf("head %d: %q -> %d bytes\n", c.Head(), req, used)
	}
	notify, _ := q.NeedsNotify(mem)
	fmt.Println("used idx", le.Uint16(ram[usedAddr+2:]), "notify", notify, string(ram[0x9000:0x9009]))
	// Output:
	// head 0: "ping" -> 9 bytes
	// used idx 1 notify true pong:ping
}
