package boot

import "testing"

func TestPlaceInitrd(t *testing.T) {
	const m = 1 << 20
	for _, tc := range []struct {
		name                         string
		lowEnd, kernelEnd, size, max uint64
		want                         uint64
	}{
		{"top of RAM", 64 * m, 24 * m, 1 * m, 0x7fffffff, 63 * m},
		{"unaligned size", 64 * m, 24 * m, 1*m + 100, 0x7fffffff, 62*m + (m - 0x1000)},
		{"initrd_addr_max", 64 * m, 24 * m, 1 * m, 48*m - 1, 47 * m},
		{"initrd_addr_max, unaligned", 64 * m, 24 * m, 0x1000, 48*m - 2, 48*m - 0x2000},
		{"3 GiB guest", 3 << 30, 24 * m, 10 * m, 0x7fffffff, 2<<30 - 10*m},
		{"3 GiB guest, high initrd_addr_max", 3 << 30, 24 * m, 10 * m, 1<<64 - 1, 3<<30 - 10*m},
		{"exact fit", 64 * m, 16 * m, 48 * m, 0x7fffffff, 16 * m},
		{"exact fit, unaligned kernel end", 64 * m, 16*m - 0x800, 48 * m, 0x7fffffff, 16 * m},
		{"no initrd", 64 * m, 24 * m, 0, 0x7fffffff, 0},
	} {
		got, err := placeInitrd(tc.lowEnd, tc.kernelEnd, tc.size, tc.max)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s: %#x, want %#x", tc.name, got, tc.want)
		}
		if got%0x1000 != 0 || (tc.size > 0 && (got < tc.kernelEnd || got+tc.size > tc.lowEnd || got+tc.size-1 > tc.max)) {
			t.Errorf("%s: %#x violates the constraints", tc.name, got)
		}
	}
}

func TestPlaceInitrdErrors(t *testing.T) {
	const m = 1 << 20
	_, err := placeInitrd(64*m, 24*m+1, 40*m, 0x7fffffff)
	wantErr(t, err, ErrMemoryTooSmall, "kernel and initrd need at least 65 MiB")
	_, err = placeInitrd(64*m, 24*m, 20*m, 40*m-1)
	wantErr(t, err, ErrInitrdTooLarge, "20 MiB initrd", "0x2800000")
	_, err = placeInitrd(3<<30, 24*m, 3<<30, 1<<64-1)
	wantErr(t, err, ErrInitrdTooLarge)
	_, err = placeInitrd(64*m, 1<<64-1, 1, 1<<64-1)
	wantErr(t, err, ErrInitrdTooLarge)
}
