import type { Datapath } from '../src/index.js';

/** Addresses used by every Program.run suite. */
export const A = {
  v4: {
    pod: '10.0.1.5',
    localPod: '10.0.1.9',
    localNoIfindex: '10.0.1.10',
    remote: '10.0.2.20',
    notReady: '10.0.3.30',
    unknown: '8.8.8.8',
    nodeReady: '192.168.0.3',
    nodeNotReady: '192.168.0.4',
    nodeInPodRange: '10.0.9.1',
  },
  v6: {
    pod: 'fd00:1::5',
    localPod: 'fd00:1::9',
    localNoIfindex: 'fd00:1::10',
    remote: 'fd00:2::20',
    notReady: 'fd00:3::30',
    unknown: '2001:db8::1',
    nodeReady: 'fd01::3',
    nodeNotReady: 'fd01::4',
    nodeInPodRange: 'fd00:9::1',
  },
} as const;

export const WG_IFINDEX = 42;
export const LOCAL_VETH_IFINDEX = 77;
export const REMOTE_NODE_ID = 7;
export const REMOTE_KEY_INDEX = 3;

/** Fills ipcache with one of each kind of entry, for both families. */
export function fillIpcache(dp: Datapath): void {
  for (const f of ['v4', 'v6'] as const) {
    const a = A[f];
    const host = f === 'v4' ? 32 : 128;
    const podNet = f === 'v4' ? 24 : 64;
    const nodeIp = f === 'v4' ? '192.168.0.2' : 'fd01::2';
    dp.ipcache.update(`${a.localPod}/${host}`, { local: true, ifindex: LOCAL_VETH_IFINDEX });
    dp.ipcache.update(`${a.localNoIfindex}/${host}`, { local: true });
    dp.ipcache.update(`${a.pod}/${host}`, { local: true, ifindex: LOCAL_VETH_IFINDEX + 1 });
    dp.ipcache.update(`${a.remote}/${podNet}`, {
      remote: true,
      encryptReady: true,
      nodeIp,
      nodeId: REMOTE_NODE_ID,
      keyIndex: REMOTE_KEY_INDEX,
    });
    dp.ipcache.update(`${a.notReady}/${podNet}`, { remote: true, nodeIp, nodeId: 8 });
    dp.ipcache.update(`${a.nodeReady}/${host}`, {
      remote: true,
      isNode: true,
      encryptReady: true,
      nodeIp: a.nodeReady,
      nodeId: 9,
    });
    dp.ipcache.update(`${a.nodeNotReady}/${host}`, { remote: true, isNode: true, nodeIp: a.nodeNotReady, nodeId: 10 });
    dp.ipcache.update(`${a.nodeInPodRange}/${host}`, { remote: true, isNode: true, nodeIp: a.nodeInPodRange, nodeId: 11 });
  }
}
