package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

const usage = `usage:
  veil-gobench wg-configure --device NAME --config FILE.json
      wgctrl-go ConfigureDevice with the config in FILE (see wg.go for its JSON shape)
  veil-gobench xfrm --op add|del --file FILE.json [--netns NAME]
      vishvananda/netlink: add (BLOCK policies, states, other policies) or delete the objects in FILE
  veil-gobench routes --file FILE --table N [--netns NAME]
      vishvananda/netlink RouteAdd: one blackhole route per CIDR line of FILE into table N
  veil-gobench bpf-lpm --pin PATH --keys FILE --values FILE [--mode batch|loop]
      cilium/ebpf: FILE holds N 8-byte LPM keys / N 4-byte values; batch = one BatchUpdate
`

// command is one parsed subcommand.
type command interface {
	name() string
	exec() (result, error)
}

// argError names the flag that is wrong.
type argError struct{ flag, msg string }

func (e *argError) Error() string { return fmt.Sprintf("--%s: %s", e.flag, e.msg) }

// parseArgs turns argv (without the program name) into a command; nil, nil means "print usage".
func parseArgs(args []string) (command, error) {
	if len(args) == 0 {
		return nil, errors.New("missing subcommand (wg-configure, xfrm, routes, bpf-lpm)")
	}
	sub, rest := args[0], args[1:]
	fs := flag.NewFlagSet(sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	required := func(flag, v string) error {
		if strings.TrimSpace(v) == "" {
			return &argError{flag, "is required"}
		}
		return nil
	}
	parse := func() error {
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return fmt.Errorf("unexpected argument %q", fs.Arg(0))
		}
		return nil
	}
	switch sub {
	case "help", "-h", "--help":
		return nil, nil
	case "wg-configure":
		c := &wgCmd{}
		fs.StringVar(&c.device, "device", "", "")
		fs.StringVar(&c.config, "config", "", "")
		if err := parse(); err != nil {
			return nil, err
		}
		return c, errors.Join(required("device", c.device), required("config", c.config))
	case "xfrm":
		c := &xfrmCmd{}
		fs.StringVar(&c.op, "op", "", "")
		fs.StringVar(&c.file, "file", "", "")
		fs.StringVar(&c.netns, "netns", "", "")
		if err := parse(); err != nil {
			return nil, err
		}
		if err := required("file", c.file); err != nil {
			return nil, err
		}
		if c.op != "add" && c.op != "del" {
			return nil, &argError{"op", fmt.Sprintf("must be add or del, not %q", c.op)}
		}
		return c, nil
	case "routes":
		c := &routesCmd{}
		fs.StringVar(&c.file, "file", "", "")
		fs.StringVar(&c.netns, "netns", "", "")
		fs.IntVar(&c.table, "table", 0, "")
		if err := parse(); err != nil {
			return nil, err
		}
		if err := required("file", c.file); err != nil {
			return nil, err
		}
		if c.table <= 0 || c.table == 255 || c.table == 254 {
			return nil, &argError{"table", fmt.Sprintf("must be a positive table ID other than main/local, not %d", c.table)}
		}
		return c, nil
	case "bpf-lpm":
		c := &bpfCmd{mode: "batch"}
		fs.StringVar(&c.pin, "pin", "", "")
		fs.StringVar(&c.keys, "keys", "", "")
		fs.StringVar(&c.values, "values", "", "")
		fs.StringVar(&c.mode, "mode", "batch", "")
		if err := parse(); err != nil {
			return nil, err
		}
		if err := errors.Join(required("pin", c.pin), required("keys", c.keys), required("values", c.values)); err != nil {
			return nil, err
		}
		if c.mode != "batch" && c.mode != "loop" {
			return nil, &argError{"mode", fmt.Sprintf("must be batch or loop, not %q", c.mode)}
		}
		return c, nil
	}
	return nil, fmt.Errorf("unknown subcommand %q (wg-configure, xfrm, routes, bpf-lpm)", sub)
}
