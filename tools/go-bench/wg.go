package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// wgConfigFile is the JSON the TypeScript bench writes: keys in base64 (as `wg` prints them).
type wgConfigFile struct {
	PrivateKey   string `json:"privateKey,omitempty"`
	ListenPort   *int   `json:"listenPort,omitempty"`
	ReplacePeers bool   `json:"replacePeers"`
	Peers        []struct {
		PublicKey           string   `json:"publicKey"`
		Endpoint            string   `json:"endpoint,omitempty"` // "a.b.c.d:port"
		PersistentKeepalive *int     `json:"persistentKeepalive,omitempty"`
		AllowedIPs          []string `json:"allowedIPs"`
	} `json:"peers"`
}

type wgCmd struct{ device, config string }

func (c *wgCmd) name() string { return "wg-configure" }

func (c *wgCmd) exec() (result, error) {
	raw, err := os.ReadFile(c.config)
	if err != nil {
		return result{}, err
	}
	cfg, err := toWgConfig(raw)
	if err != nil {
		return result{}, fmt.Errorf("%s: %w", c.config, err)
	}
	client, err := wgctrl.New()
	if err != nil {
		return result{}, err
	}
	defer client.Close()
	// Finds the device (and so the driver) before the clock starts, as Veil's side resolves its
	// driver before timing.
	if _, err := client.Device(c.device); err != nil {
		return result{}, err
	}
	t0 := time.Now()
	if err := client.ConfigureDevice(c.device, cfg); err != nil {
		return result{}, err
	}
	ms := float64(time.Since(t0).Nanoseconds()) / 1e6
	return result{Tool: "wgctrl-go", Op: "configure", Ms: ms, Count: len(cfg.Peers)}, nil
}

func toWgConfig(raw []byte) (wgtypes.Config, error) {
	var f wgConfigFile
	if err := json.Unmarshal(raw, &f); err != nil {
		return wgtypes.Config{}, err
	}
	cfg := wgtypes.Config{ReplacePeers: f.ReplacePeers, ListenPort: f.ListenPort}
	if f.PrivateKey != "" {
		k, err := wgtypes.ParseKey(f.PrivateKey)
		if err != nil {
			return cfg, fmt.Errorf("privateKey: %w", err)
		}
		cfg.PrivateKey = &k
	}
	for i, p := range f.Peers {
		k, err := wgtypes.ParseKey(p.PublicKey)
		if err != nil {
			return cfg, fmt.Errorf("peers[%d].publicKey: %w", i, err)
		}
		pc := wgtypes.PeerConfig{PublicKey: k, ReplaceAllowedIPs: true}
		if p.Endpoint != "" {
			ep, err := net.ResolveUDPAddr("udp", p.Endpoint)
			if err != nil {
				return cfg, fmt.Errorf("peers[%d].endpoint: %w", i, err)
			}
			pc.Endpoint = ep
		}
		if p.PersistentKeepalive != nil {
			d := time.Duration(*p.PersistentKeepalive) * time.Second
			pc.PersistentKeepaliveInterval = &d
		}
		for j, a := range p.AllowedIPs {
			_, n, err := net.ParseCIDR(a)
			if err != nil {
				return cfg, fmt.Errorf("peers[%d].allowedIPs[%d]: %w", i, j, err)
			}
			pc.AllowedIPs = append(pc.AllowedIPs, *n)
		}
		cfg.Peers = append(cfg.Peers, pc)
	}
	return cfg, nil
}
