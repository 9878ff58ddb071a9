import { attachTc, type TcLink } from 'libbpf-ts';
import { type Datapath, loadDatapath } from '../datapath.js';
import { type LabNode, WG_PORT } from './lab.js';

/**
 * Loads Veil's WireGuard datapath for lab node `n`: its pod is local, `peer`'s pod CIDRs are remote and
 * encrypt-ready behind the peer's underlay address (node ID `peerId`), the lab's pod ranges are strict.
 * Closes what it loaded when configuring fails.
 */
export function loadLabDatapath(n: LabNode, peer: LabNode, peerId: number, ipcacheMaxEntries: number): Datapath {
  const dp = loadDatapath({
    ipcacheMaxEntries,
    config: { backend: 'wireguard', wgIfindex: n.wgIfindex, mtu: 1420, wgPort: WG_PORT, strict: true },
  });
  try {
    dp.ipcache.update(`${n.pod4}/32`, { local: true, ifindex: n.hostVethIfindex });
    dp.ipcache.update(`${n.pod6}/128`, { local: true, ifindex: n.hostVethIfindex });
    for (const cidr of [peer.podCidr4, peer.podCidr6]) {
      dp.ipcache.update(cidr, { remote: true, encryptReady: true, nodeIp: peer.underlay4, nodeId: peerId });
    }
    dp.addStrictCidr('10.200.0.0/16');
    dp.addStrictCidr('fd00:200::/32');
    return dp;
  } catch (e) {
    dp.close();
    throw e;
  }
}

/**
 * Attaches `dp` in node `n`'s namespace: from-pod on the pod veth's host side (ingress), from-tunnel on
 * the WireGuard device (ingress), to-wire on the underlay (egress). Detaches what it attached when one fails.
 */
export function attachLabDatapath(n: LabNode, dp: Datapath): TcLink[] {
  const links: TcLink[] = [];
  try {
    links.push(attachTc({ ifindex: n.hostVethIfindex, direction: 'ingress', program: dp.fromPod, netns: n.netnsPath }));
    links.push(attachTc({ ifindex: n.wgIfindex, direction: 'ingress', program: dp.fromTunnel, netns: n.netnsPath }));
    links.push(attachTc({ ifindex: n.underlayIfindex, direction: 'egress', program: dp.toWire, netns: n.netnsPath }));
    return links;
  } catch (e) {
    for (const l of links) l.detach();
    throw e;
  }
}
