package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestParseArgsValid(t *testing.T) {
	cases := []struct {
		argv []string
		want command
	}{
		{[]string{"wg-configure", "--device", "wg0", "--config", "c.json"}, &wgCmd{device: "wg0", config: "c.json"}},
		{[]string{"xfrm", "--op", "del", "--file", "x.json", "--netns", "ns1"}, &xfrmCmd{op: "del", file: "x.json", netns: "ns1"}},
		{[]string{"routes", "--file", "r.txt", "--table", "4242"}, &routesCmd{file: "r.txt", table: 4242}},
		{[]string{"bpf-lpm", "--pin", "/sys/fs/bpf/m", "--keys", "k", "--values", "v"}, &bpfCmd{pin: "/sys/fs/bpf/m", keys: "k", values: "v", mode: "batch"}},
		{[]string{"bpf-lpm", "--pin", "p", "--keys", "k", "--values", "v", "--mode", "loop"}, &bpfCmd{pin: "p", keys: "k", values: "v", mode: "loop"}},
	}
	for _, c := range cases {
		got, err := parseArgs(c.argv)
		if err != nil {
			t.Fatalf("%v: %v", c.argv, err)
		}
		if got == nil || !equalCmd(got, c.want) {
			t.Fatalf("%v: got %#v, want %#v", c.argv, got, c.want)
		}
	}
}

func equalCmd(a, b command) bool {
	switch x := a.(type) {
	case *wgCmd:
		y, ok := b.(*wgCmd)
		return ok && *x == *y
	case *xfrmCmd:
		y, ok := b.(*xfrmCmd)
		return ok && *x == *y
	case *routesCmd:
		y, ok := b.(*routesCmd)
		return ok && *x == *y
	case *bpfCmd:
		y, ok := b.(*bpfCmd)
		return ok && *x == *y
	}
	return false
}

func TestParseArgsErrorsNameTheFlag(t *testing.T) {
	cases := []struct {
		argv []string
		want string
	}{
		{nil, "missing subcommand"},
		{[]string{"frobnicate"}, `unknown subcommand "frobnicate"`},
		{[]string{"wg-configure", "--config", "c.json"}, "--device: is required"},
		{[]string{"wg-configure"}, "--config: is required"},
		{[]string{"xfrm", "--file", "x.json"}, `--op: must be add or del, not ""`},
		{[]string{"xfrm", "--op", "add"}, "--file: is required"},
		{[]string{"routes", "--file", "r", "--table", "254"}, "--table: must be a positive table ID"},
		{[]string{"routes", "--file", "r", "--table", "x"}, "invalid value"},
		{[]string{"routes", "--file", "r", "--table", "7", "extra"}, `unexpected argument "extra"`},
		{[]string{"bpf-lpm", "--pin", "p", "--keys", "k"}, "--values: is required"},
		{[]string{"bpf-lpm", "--pin", "p", "--keys", "k", "--values", "v", "--mode", "fast"}, `--mode: must be batch or loop, not "fast"`},
		{[]string{"bpf-lpm", "--bogus"}, "flag provided but not defined: -bogus"},
	}
	for _, c := range cases {
		_, err := parseArgs(c.argv)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%v: error %v, want it to contain %q", c.argv, err, c.want)
		}
	}
	var ae *argError
	if _, err := parseArgs([]string{"xfrm", "--op", "move", "--file", "f"}); !errors.As(err, &ae) || ae.flag != "op" {
		t.Fatalf("want an argError for --op, got %v", err)
	}
}

func TestRunPrintsUsageAndExitCodes(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"help"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "veil-gobench bpf-lpm") {
		t.Fatalf("help: exit %d, stdout %q", code, out.String())
	}
	out.Reset()
	if code := run([]string{"routes"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "--file: is required") {
		t.Fatalf("bad args: exit %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"routes", "--file", "/nonexistent/veil-gobench", "--table", "7"}, &out, &errb); code != 1 || out.Len() != 0 {
		t.Fatalf("failed run: exit %d, stdout %q", code, out.String())
	}
}

func TestWgConfigFromJSON(t *testing.T) {
	raw := []byte(`{"listenPort":51820,"replacePeers":true,"peers":[{"publicKey":"YBnuCRlJ0n5XcfPUxuZ9mBqz1/vSaH0BVRjhSP6Nb2g=","endpoint":"10.0.0.2:51871","persistentKeepalive":25,"allowedIPs":["100.0.1.0/24"]}]}`)
	cfg, err := toWgConfig(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.ReplacePeers || *cfg.ListenPort != 51820 || len(cfg.Peers) != 1 {
		t.Fatalf("config %+v", cfg)
	}
	p := cfg.Peers[0]
	if p.Endpoint.String() != "10.0.0.2:51871" || p.AllowedIPs[0].String() != "100.0.1.0/24" || p.PersistentKeepaliveInterval.Seconds() != 25 || !p.ReplaceAllowedIPs {
		t.Fatalf("peer %+v", p)
	}
	if _, err := toWgConfig([]byte(`{"peers":[{"publicKey":"nope","allowedIPs":[]}]}`)); err == nil || !strings.Contains(err.Error(), "peers[0].publicKey") {
		t.Fatalf("bad key: %v", err)
	}
}

func TestXfrmFileToNetlink(t *testing.T) {
	f := xfrmFile{}
	raw := []byte(`{"states":[{"src":"100.64.0.1","dst":"100.64.0.2","spi":256,"reqid":7,"mode":"tunnel","esn":true,"replayWindow":128,"mark":{"value":3584,"mask":65280},"aead":{"name":"rfc4106(gcm(aes))","key":"000102030405060708090a0b0c0d0e0f10111213","icvLen":128}}],
	"policies":[{"selector":{"src":"0.0.0.0/0","dst":"0.0.0.0/0"},"dir":"out","priority":1,"action":"block","mark":{"value":3584}},
	{"selector":{"src":"10.0.0.0/24","dst":"10.128.0.1"},"dir":"out","priority":100,"templates":[{"src":"192.0.2.1","dst":"192.0.2.2","proto":"esp","mode":"tunnel","reqid":1}]}]}`)
	if err := jsonUnmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	block, states, rest, err := f.toNetlink()
	if err != nil {
		t.Fatal(err)
	}
	if len(block) != 1 || len(states) != 1 || len(rest) != 1 {
		t.Fatalf("split %d/%d/%d", len(block), len(states), len(rest))
	}
	if block[0].Mark.Mask != 0xffffffff || states[0].Mark.Mask != 0xff00 || len(states[0].Aead.Key) != 20 || !states[0].ESN {
		t.Fatalf("marks/keys: %+v %+v", block[0].Mark, states[0])
	}
	if rest[0].Dst.String() != "10.128.0.1/32" || rest[0].Tmpls[0].Reqid != 1 {
		t.Fatalf("policy %+v", rest[0])
	}
	f.Policies[1].Dir = "sideways"
	if _, _, _, err := f.toNetlink(); err == nil || !strings.Contains(err.Error(), "policies[1].dir") {
		t.Fatalf("bad dir: %v", err)
	}
}
