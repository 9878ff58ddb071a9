package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
)

// xfrmFile mirrors node-xfrm-bindings' XfrmState / XfrmPolicy JSON (AEAD keys as hex).
type xfrmFile struct {
	States []struct {
		Src          string    `json:"src"`
		Dst          string    `json:"dst"`
		Proto        string    `json:"proto"`
		Spi          uint32    `json:"spi"`
		Reqid        int       `json:"reqid"`
		Mode         string    `json:"mode"`
		ESN          bool      `json:"esn"`
		ReplayWindow int       `json:"replayWindow"`
		Mark         *xfrmMark `json:"mark"`
		Aead         *struct {
			Name   string `json:"name"`
			Key    string `json:"key"`
			ICVLen int    `json:"icvLen"`
		} `json:"aead"`
	} `json:"states"`
	Policies []struct {
		Selector struct {
			Src string `json:"src"`
			Dst string `json:"dst"`
		} `json:"selector"`
		Dir       string    `json:"dir"`
		Priority  int       `json:"priority"`
		Action    string    `json:"action"`
		Mark      *xfrmMark `json:"mark"`
		Templates []struct {
			Src      string `json:"src"`
			Dst      string `json:"dst"`
			Proto    string `json:"proto"`
			Mode     string `json:"mode"`
			Reqid    int    `json:"reqid"`
			Optional bool   `json:"optional"`
		} `json:"templates"`
	} `json:"policies"`
}

type xfrmMark struct {
	Value uint32  `json:"value"`
	Mask  *uint32 `json:"mask"`
}

func (m *xfrmMark) toNl() *netlink.XfrmMark {
	if m == nil {
		return nil
	}
	mask := uint32(0xffffffff)
	if m.Mask != nil {
		mask = *m.Mask
	}
	return &netlink.XfrmMark{Value: m.Value, Mask: mask}
}

type xfrmCmd struct{ op, file, netns string }

func (c *xfrmCmd) name() string { return "xfrm" }

func parseIP(field, s string) (net.IP, error) {
	ip := net.ParseIP(s)
	if ip == nil {
		return nil, fmt.Errorf("%s: %q is not an IP address", field, s)
	}
	return ip, nil
}

func parseNet(field, s string) (*net.IPNet, error) {
	if !strings.Contains(s, "/") {
		if strings.Contains(s, ":") {
			s += "/128"
		} else {
			s += "/32"
		}
	}
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	return n, nil
}

func parseMode(field, s string) (netlink.Mode, error) {
	switch s {
	case "tunnel":
		return netlink.XFRM_MODE_TUNNEL, nil
	case "transport", "":
		return netlink.XFRM_MODE_TRANSPORT, nil
	}
	return 0, fmt.Errorf("%s: unsupported mode %q", field, s)
}

// toNetlink converts the file into vishvananda/netlink objects, in the order `add` writes them
// (BLOCK policies, states, the other policies: fail-closed, as Veil's applyPlan and the ip batch).
func (f *xfrmFile) toNetlink() (block []netlink.XfrmPolicy, states []netlink.XfrmState, rest []netlink.XfrmPolicy, err error) {
	for i, s := range f.States {
		at := fmt.Sprintf("states[%d]", i)
		st := netlink.XfrmState{Proto: netlink.XFRM_PROTO_ESP, Spi: int(s.Spi), Reqid: s.Reqid, ESN: s.ESN, ReplayWindow: s.ReplayWindow, Mark: s.Mark.toNl()}
		if s.Proto != "" && s.Proto != "esp" {
			return nil, nil, nil, fmt.Errorf("%s.proto: only esp is supported, not %q", at, s.Proto)
		}
		if st.Src, err = parseIP(at+".src", s.Src); err != nil {
			return
		}
		if st.Dst, err = parseIP(at+".dst", s.Dst); err != nil {
			return
		}
		if st.Mode, err = parseMode(at+".mode", s.Mode); err != nil {
			return
		}
		if s.Aead != nil {
			key, kerr := hex.DecodeString(s.Aead.Key)
			if kerr != nil {
				return nil, nil, nil, fmt.Errorf("%s.aead.key: %w", at, kerr)
			}
			st.Aead = &netlink.XfrmStateAlgo{Name: s.Aead.Name, Key: key, ICVLen: s.Aead.ICVLen}
		}
		states = append(states, st)
	}
	for i, p := range f.Policies {
		at := fmt.Sprintf("policies[%d]", i)
		pol := netlink.XfrmPolicy{Priority: p.Priority, Mark: p.Mark.toNl()}
		if pol.Src, err = parseNet(at+".selector.src", p.Selector.Src); err != nil {
			return
		}
		if pol.Dst, err = parseNet(at+".selector.dst", p.Selector.Dst); err != nil {
			return
		}
		switch p.Dir {
		case "in":
			pol.Dir = netlink.XFRM_DIR_IN
		case "out":
			pol.Dir = netlink.XFRM_DIR_OUT
		case "fwd":
			pol.Dir = netlink.XFRM_DIR_FWD
		default:
			return nil, nil, nil, fmt.Errorf("%s.dir: %q", at, p.Dir)
		}
		for j, t := range p.Templates {
			tat := fmt.Sprintf("%s.templates[%d]", at, j)
			tm := netlink.XfrmPolicyTmpl{Proto: netlink.XFRM_PROTO_ESP, Reqid: t.Reqid}
			if t.Optional {
				tm.Optional = 1
			}
			if tm.Src, err = parseIP(tat+".src", t.Src); err != nil {
				return
			}
			if tm.Dst, err = parseIP(tat+".dst", t.Dst); err != nil {
				return
			}
			if tm.Mode, err = parseMode(tat+".mode", t.Mode); err != nil {
				return
			}
			pol.Tmpls = append(pol.Tmpls, tm)
		}
		if p.Action == "block" {
			pol.Action = netlink.XFRM_POLICY_BLOCK
			block = append(block, pol)
		} else {
			rest = append(rest, pol)
		}
	}
	return block, states, rest, nil
}

func (c *xfrmCmd) exec() (result, error) {
	raw, err := os.ReadFile(c.file)
	if err != nil {
		return result{}, err
	}
	var f xfrmFile
	if err := json.Unmarshal(raw, &f); err != nil {
		return result{}, fmt.Errorf("%s: %w", c.file, err)
	}
	block, states, rest, err := f.toNetlink()
	if err != nil {
		return result{}, fmt.Errorf("%s: %w", c.file, err)
	}
	h, err := handleIn(c.netns)
	if err != nil {
		return result{}, err
	}
	defer h.Close()
	n := len(block) + len(states) + len(rest)
	t0 := time.Now()
	if c.op == "add" {
		for i := range block {
			if err := h.XfrmPolicyAdd(&block[i]); err != nil {
				return result{}, fmt.Errorf("policy add %v: %w", block[i], err)
			}
		}
		for i := range states {
			if err := h.XfrmStateAdd(&states[i]); err != nil {
				return result{}, fmt.Errorf("state add %v: %w", states[i], err)
			}
		}
		for i := range rest {
			if err := h.XfrmPolicyAdd(&rest[i]); err != nil {
				return result{}, fmt.Errorf("policy add %v: %w", rest[i], err)
			}
		}
	} else {
		// Reverse order: the other policies, the states, then the BLOCK policies.
		for i := range rest {
			if err := h.XfrmPolicyDel(&rest[i]); err != nil {
				return result{}, fmt.Errorf("policy del %v: %w", rest[i], err)
			}
		}
		for i := range states {
			if err := h.XfrmStateDel(&states[i]); err != nil {
				return result{}, fmt.Errorf("state del: %w", err)
			}
		}
		for i := range block {
			if err := h.XfrmPolicyDel(&block[i]); err != nil {
				return result{}, fmt.Errorf("policy del %v: %w", block[i], err)
			}
		}
	}
	ms := float64(time.Since(t0).Nanoseconds()) / 1e6
	return result{Tool: "vishvananda/netlink", Op: "xfrm-" + c.op, Ms: ms, Count: n}, nil
}

// jsonUnmarshal is json.Unmarshal (kept as a seam for the tests' inline fixtures).
var jsonUnmarshal = json.Unmarshal
