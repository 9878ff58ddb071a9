package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

type routesCmd struct {
	file, netns string
	table       int
}

func (c *routesCmd) name() string { return "routes" }

func (c *routesCmd) exec() (result, error) {
	dsts, err := readCIDRs(c.file)
	if err != nil {
		return result{}, err
	}
	h, err := handleIn(c.netns)
	if err != nil {
		return result{}, err
	}
	defer h.Close()
	routes := make([]netlink.Route, len(dsts))
	for i, d := range dsts {
		routes[i] = netlink.Route{Dst: d, Type: unix.RTN_BLACKHOLE, Table: c.table, Protocol: unix.RTPROT_BOOT}
	}
	t0 := time.Now()
	for i := range routes {
		if err := h.RouteAdd(&routes[i]); err != nil {
			return result{}, fmt.Errorf("route %s: %w", routes[i].Dst, err)
		}
	}
	ms := float64(time.Since(t0).Nanoseconds()) / 1e6
	return result{Tool: "vishvananda/netlink", Op: "route-add", Ms: ms, Count: len(routes)}, nil
}

func readCIDRs(path string) ([]*net.IPNet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []*net.IPNet
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" {
			continue
		}
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		out = append(out, n)
	}
	return out, sc.Err()
}
