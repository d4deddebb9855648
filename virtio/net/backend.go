// Package net is the virtio network device (VIRTIO 1.2 section 5.1) with
// one receive and one transmit queue, plus the host-side backends that move
// its Ethernet frames: an in-process learning Switch, a length-prefixed
// stream over a unix socket (to join switches of different VMM processes),
// and a Linux TAP interface.
//
// The device offers VIRTIO_NET_F_MAC, VIRTIO_NET_F_STATUS (link always up),
// VIRTIO_RING_F_EVENT_IDX and VIRTIO_RING_F_INDIRECT_DESC, and no checksum
// or segmentation offloads and no VIRTIO_NET_F_MRG_RXBUF. With
// VIRTIO_F_VERSION_1 every frame is therefore preceded by a 12-byte
// struct virtio_net_hdr whose fields are all zero except num_buffers, which
// the device sets to 1 on receive (spec 5.1.6.4); each receive chain must
// hold the header and the whole frame.
package net

import "errors"

// Backend is the host side of a network device: it moves whole Ethernet
// frames (destination MAC first, no FCS, no virtio header).
//
// Send and Recv may be called concurrently with each other (one goroutine
// sending, one receiving); Close may be called from any goroutine and makes
// a blocked Recv return.
type Backend interface {
	// Send transmits one frame (guest -> network). It must not keep frame
	// after returning. Backends that buffer may drop frames rather than
	// block (network semantics) and count the drop.
	Send(frame []byte) error
	// Recv blocks until a frame arrives (network -> guest), copies it into
	// buf and returns its length. It never returns part of a frame: a frame
	// longer than buf is discarded (and counted where the backend counts).
	// Once the backend is closed (or its peer is gone) it returns an error,
	// ErrClosed or io.EOF or the underlying error; the caller stops then.
	Recv(buf []byte) (int, error)
	// Close releases the backend and unblocks Recv.
	Close() error
}

// ErrClosed is returned by Send and Recv on a closed backend.
var ErrClosed = errors.New("virtio-net: backend closed")

// MaxFrameLen bounds a frame's length: the receive buffer the device uses,
// and the largest length prefix the stream protocol accepts. It covers a
// 64 KiB MTU plus the Ethernet and VLAN headers.
const MaxFrameLen = 65536 + 64

// EthHeaderLen is the length of an Ethernet header (dst, src, ethertype).
const EthHeaderLen = 14
