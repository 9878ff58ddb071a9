// veil-gobench runs one operation through one of the Go libraries Cilium itself uses, so Veil's
// benchmarks can time it beside Veil's TypeScript on the same kernel and the same objects:
//
//	wg-configure  golang.zx2c4.com/wireguard/wgctrl  ConfigureDevice (kernel genetlink or userspace UAPI)
//	xfrm          github.com/vishvananda/netlink      XfrmStateAdd/XfrmPolicyAdd (and Del)
//	routes        github.com/vishvananda/netlink      RouteAdd of blackhole routes
//	bpf-lpm       github.com/cilium/ebpf              BatchUpdate (or Update per key) into a pinned map
//
// Each run reads its objects from a file the TypeScript bench wrote, opens its socket or map, and
// only then starts the clock: the JSON line it prints on stdout ({"tool","op","ms","count",...}) is
// the library call alone, the same span the TypeScript side times. Checking the kernel's state
// afterwards is the caller's job (it checks both sides the same way). Usage: veil-gobench help.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// result is the one JSON line a run prints.
type result struct {
	Tool  string  `json:"tool"`
	Op    string  `json:"op"`
	Ms    float64 `json:"ms"`
	Count int     `json:"count"`
	Mode  string  `json:"mode,omitempty"`
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd, err := parseArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "veil-gobench: %v\n%s", err, usage)
		return 2
	}
	if cmd == nil {
		fmt.Fprint(stdout, usage)
		return 0
	}
	res, err := cmd.exec()
	if err != nil {
		fmt.Fprintf(stderr, "veil-gobench %s: %v\n", cmd.name(), err)
		return 1
	}
	line, _ := json.Marshal(res)
	fmt.Fprintf(stdout, "%s\n", line)
	return 0
}
