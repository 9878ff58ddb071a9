package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cilium/ebpf"
)

// lpmKey is struct { __u32 prefixlen; __u8 addr[4]; } (host byte order prefixlen).
type lpmKey struct {
	PrefixLen uint32
	Addr      [4]byte
}

type bpfCmd struct{ pin, keys, values, mode string }

func (c *bpfCmd) name() string { return "bpf-lpm" }

// readLpm reads N 8-byte keys and N 4-byte values (host byte order, as the TypeScript codecs write them).
func readLpm(keysPath, valuesPath string) ([]lpmKey, []uint32, error) {
	kb, err := os.ReadFile(keysPath)
	if err != nil {
		return nil, nil, err
	}
	vb, err := os.ReadFile(valuesPath)
	if err != nil {
		return nil, nil, err
	}
	if len(kb)%8 != 0 || len(vb)%4 != 0 || len(kb)/8 != len(vb)/4 {
		return nil, nil, fmt.Errorf("%d key bytes and %d value bytes are not N 8-byte keys and N 4-byte values", len(kb), len(vb))
	}
	n := len(kb) / 8
	keys := make([]lpmKey, n)
	values := make([]uint32, n)
	for i := range keys {
		keys[i].PrefixLen = binary.NativeEndian.Uint32(kb[i*8:])
		copy(keys[i].Addr[:], kb[i*8+4:i*8+8])
		values[i] = binary.NativeEndian.Uint32(vb[i*4:])
	}
	return keys, values, nil
}

func (c *bpfCmd) exec() (result, error) {
	keys, values, err := readLpm(c.keys, c.values)
	if err != nil {
		return result{}, err
	}
	m, err := ebpf.LoadPinnedMap(c.pin, nil)
	if err != nil {
		return result{}, err
	}
	defer m.Close()
	if m.Type() != ebpf.LPMTrie || m.KeySize() != 8 || m.ValueSize() != 4 {
		return result{}, fmt.Errorf("%s: %s key %d value %d, want LPMTrie key 8 value 4", c.pin, m.Type(), m.KeySize(), m.ValueSize())
	}
	mode := c.mode
	t0 := time.Now()
	if mode == "batch" {
		n, err := m.BatchUpdate(keys, values, nil)
		if errors.Is(err, ebpf.ErrNotSupported) {
			return result{}, fmt.Errorf("the kernel has no batch update for this map type: %w", err)
		}
		if err != nil {
			return result{}, err
		}
		if n != len(keys) {
			return result{}, fmt.Errorf("BatchUpdate wrote %d of %d", n, len(keys))
		}
	} else {
		for i := range keys {
			if err := m.Update(&keys[i], values[i], ebpf.UpdateAny); err != nil {
				return result{}, err
			}
		}
	}
	ms := float64(time.Since(t0).Nanoseconds()) / 1e6
	return result{Tool: "cilium/ebpf", Op: "lpm-update", Ms: ms, Count: len(keys), Mode: mode}, nil
}
