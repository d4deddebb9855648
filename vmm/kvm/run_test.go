package kvm

import (
	"encoding/binary"
	"testing"
)

func page() []byte { return make([]byte, 4096) }

func TestDecodeIO(t *testing.T) {
	b := page()
	binary.LittleEndian.PutUint32(b[8:], KVM_EXIT_IO)
	b[32] = KVM_EXIT_IO_OUT
	b[33] = 1
	binary.LittleEndian.PutUint16(b[34:], 0x3f8)
	binary.LittleEndian.PutUint32(b[36:], 3)
	binary.LittleEndian.PutUint64(b[40:], 0x100)
	copy(b[0x100:], "abc")
	r := NewRun(b)
	if r.ExitReason() != KVM_EXIT_IO {
		t.Fatal("exit reason")
	}
	io, ok := r.IO()
	if !ok || !io.Out || io.Size != 1 || io.Port != 0x3f8 || io.Count != 3 || string(io.Data) != "abc" {
		t.Fatalf("IO() = %+v, %v", io, ok)
	}
	// A data offset past the page is refused, not sliced.
	binary.LittleEndian.PutUint64(b[40:], 4095)
	if _, ok := r.IO(); ok {
		t.Error("IO() accepted data running past kvm_run")
	}
}

func TestDecodeMMIO(t *testing.T) {
	b := page()
	binary.LittleEndian.PutUint64(b[32:], 0xd0000004)
	copy(b[40:], []byte{1, 0, 0, 0})
	binary.LittleEndian.PutUint32(b[48:], 4)
	b[52] = 1
	m, ok := NewRun(b).MMIO()
	if !ok || m.Addr != 0xd0000004 || !m.Write || len(m.Data) != 4 || m.Data[0] != 1 {
		t.Fatalf("MMIO() = %+v, %v", m, ok)
	}
	binary.LittleEndian.PutUint32(b[48:], 9)
	if _, ok := NewRun(b).MMIO(); ok {
		t.Error("MMIO() accepted a 9-byte access")
	}
}

func TestEmulationBytes(t *testing.T) {
	b := page()
	binary.LittleEndian.PutUint32(b[32:], KVM_INTERNAL_ERROR_EMULATION)
	binary.LittleEndian.PutUint32(b[36:], 4)
	binary.LittleEndian.PutUint64(b[40:], KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)
	// insn_size 3, then the bytes cc 90 c3, NOP-padded as KVM does.
	copy(b[48:], []byte{3, 0xcc, 0x90, 0xc3, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90})
	in := NewRun(b).Internal()
	insn, ok := in.EmulationBytes()
	if !ok || len(insn) != 3 || insn[0] != 0xcc || insn[1] != 0x90 || insn[2] != 0xc3 {
		t.Fatalf("EmulationBytes = % x, %v", insn, ok)
	}
	binary.LittleEndian.PutUint64(b[40:], 0) // flag clear: no bytes
	if _, ok := NewRun(b).Internal().EmulationBytes(); ok {
		t.Error("EmulationBytes without the flag")
	}
}

func TestImmediateExit(t *testing.T) {
	b := page()
	r := NewRun(b)
	r.SetImmediateExit(true)
	if b[1] != 1 {
		t.Fatal("immediate_exit not set at offset 1")
	}
	r.SetImmediateExit(false)
	if b[1] != 0 {
		t.Fatal("immediate_exit not cleared")
	}
}

func TestKVMIoeventfdLayout(t *testing.T) {
	if n := binary.Size(kvmIoeventfd{}); n != 64 {
		t.Fatalf("struct kvm_ioeventfd is %d bytes, the kernel's is 64", n)
	}
}

func TestKVMIrqfdLayout(t *testing.T) {
	if n := binary.Size(kvmIrqfd{}); n != 32 {
		t.Fatalf("struct kvm_irqfd is %d bytes, the kernel's is 32", n)
	}
}
