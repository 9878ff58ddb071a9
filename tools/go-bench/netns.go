package main

import (
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// handleIn opens a netlink handle in the named namespace (or the current one for "").
func handleIn(name string) (*netlink.Handle, error) {
	if name == "" {
		return netlink.NewHandle()
	}
	ns, err := netns.GetFromName(name)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	return netlink.NewHandleAt(ns)
}
