#!/usr/bin/env node
// @ts-check
/**
 * Embedding @veil/backend-wireguard in your own agent, with your own peer source.
 *
 * This program is the whole "agent": it owns a WireGuard device through the backend's public API
 * (KeyStore, setupDevice, PeerReconciler, peerFromNode) and takes its peers from a JSON file it
 * watches, instead of Kubernetes Nodes. No agent-core, no BPF: traffic reaches the device by
 * ordinary routes, one per allowed IP.
 *
 *   node main.js --device wg-emb0 --port 51820 --address 10.99.0.1/32 \
 *                --state-dir /var/lib/embed-wg --peers /etc/embed-wg/peers.json [--netns NAME] [--keep-device]
 *
 * peers.json (rewritten at any time; an atomic rename is best):
 *   { "peers": [ { "name": "b", "publicKey": "<base64>", "endpoint": "192.168.1.2:51820",
 *                  "allowedIPs": ["10.99.0.2/32"], "persistentKeepalive": 25 } ] }
 *
 * stdout: one JSON object per line, e.g. {"event":"ready","publicKey":"…","driver":"userspace",…},
 * {"event":"synced","peers":1,"changes":1}, {"event":"rejected","error":"peers[0].endpoint: …"}.
 * A bad file is rejected with the field named and the last good peers stay programmed.
 * SIGTERM/SIGINT: stops wireguard-go it started and exits (with --keep-device: leaves the device
 * and daemon for the next run to adopt).
 */
import { watch } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { KeyStore, PeerReconciler, peerFromNode, setupDevice } from '@veil/backend-wireguard';
import { NetlinkSocket, addAddress, addRoute, deleteRoute } from '@veil/netlink';

const { values: opts } = parseArgs({
  options: {
    device: { type: 'string', default: 'wg-emb0' },
    port: { type: 'string', default: '51820' },
    address: { type: 'string' },
    'state-dir': { type: 'string' },
    peers: { type: 'string' },
    netns: { type: 'string' },
    'keep-device': { type: 'boolean', default: false },
  },
});

/** @param {Record<string, unknown>} event */
function emit(event) {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

/** @param {string} name */
function required(name) {
  const v = /** @type {Record<string, unknown>} */ (opts)[name];
  if (typeof v !== 'string' || v === '') {
    emit({ event: 'fatal', error: `--${name} is required` });
    process.exit(2);
  }
  return v;
}

const device = /** @type {string} */ (opts.device);
const listenPort = Number(opts.port);
const address = required('address');
const stateDir = resolve(required('state-dir'));
const peersFile = resolve(required('peers'));
const netns = opts.netns;

/**
 * Validates the peers file into DesiredPeers plus the routes they need. Throws an Error whose
 * message names the bad field (peerFromNode names its own: `endpoint`, `podCIDRs[0]`, …).
 * @param {string} text
 */
function parsePeers(text) {
  /** @type {unknown} */
  let doc;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new Error(`peers file: not JSON (${/** @type {Error} */ (e).message})`, { cause: e });
  }
  const list = /** @type {{ peers?: unknown }} */ (doc)?.peers;
  if (!Array.isArray(list)) throw new Error('peers: must be an array');
  const names = new Set();
  return list.map((raw, i) => {
    const p = /** @type {Record<string, unknown>} */ (raw ?? {});
    const at = `peers[${i}]`;
    if (typeof p.name !== 'string' || p.name === '') throw new Error(`${at}.name: must be a non-empty string`);
    if (names.has(p.name)) throw new Error(`${at}.name: duplicate "${p.name}"`);
    names.add(p.name);
    if (!Array.isArray(p.allowedIPs) || !p.allowedIPs.every((c) => typeof c === 'string')) {
      throw new Error(`${at}.allowedIPs: must be an array of CIDR strings`);
    }
    try {
      const desired = peerFromNode({
        publicKey: /** @type {string} */ (p.publicKey),
        ...(p.endpoint === undefined ? {} : { endpoint: /** @type {string} */ (p.endpoint) }),
        podCIDRs: /** @type {string[]} */ (p.allowedIPs),
        ...(typeof p.persistentKeepalive === 'number' ? { persistentKeepalive: p.persistentKeepalive } : {}),
      });
      return { name: p.name, desired };
    } catch (e) {
      // WgValidationError names the field: `endpoint`, `publicKey`, `podCIDRs[0]` (= allowedIPs[0]).
      const err = /** @type {{ field?: string, reason?: string, message: string }} */ (e);
      const field = (err.field ?? '').replace(/^podCIDRs/, 'allowedIPs');
      throw new Error(field ? `${at}.${field}: ${err.reason ?? err.message}` : `${at}: ${err.message}`, { cause: e });
    }
  });
}

const keys = await KeyStore.open({ dir: stateDir });
for (const w of keys.warnings) emit({ event: 'warning', message: w });

/** Re-pushes the peers after wireguard-go was restarted (it comes back empty). */
let resync = async () => {};
const handle = await setupDevice({
  name: device,
  privateKey: keys.privateKey(),
  listenPort,
  socketDir: join(stateDir, 'run'),
  ...(netns ? { netns } : {}),
  onRestart: () => resync(),
});
for (const w of handle.warnings) emit({ event: 'warning', message: w });

const route = NetlinkSocket.open('ROUTE', netns ? { netns } : {});
await addAddress(route, { link: device, address, replace: true });
const peers = new PeerReconciler(handle.client, device);
/** Routes this program added, so a peer's removal takes its routes with it. */
let routed = new Set();

/** @param {string} text */
async function apply(text) {
  const wanted = parsePeers(text);
  const changes = await peers.sync(wanted.map((w) => w.desired));
  const want = new Set(wanted.flatMap((w) => w.desired.allowedIPs));
  for (const dst of want) if (!routed.has(dst)) await addRoute(route, { dst, dev: device, replace: true });
  for (const dst of routed) {
    if (!want.has(dst)) await deleteRoute(route, { dst, dev: device }).catch(() => undefined);
  }
  routed = want;
  emit({ event: 'synced', peers: wanted.length, changes: changes.length });
}

let lastGood = '';
async function reload() {
  let text;
  try {
    text = await readFile(peersFile, 'utf8');
  } catch (e) {
    emit({ event: 'rejected', error: `peers file: ${/** @type {Error} */ (e).message}` });
    return;
  }
  if (text === lastGood) return;
  try {
    await apply(text);
    lastGood = text;
  } catch (e) {
    // The device keeps the last good peers: nothing was written for a file that did not validate.
    emit({ event: 'rejected', error: /** @type {Error} */ (e).message });
  }
}

// One reload at a time; events that arrive meanwhile fold into one more pass.
let running = Promise.resolve();
let again = false;
function schedule() {
  if (again) return;
  again = true;
  running = running.then(async () => {
    again = false;
    await reload();
  });
}
resync = async () => {
  peers.invalidate();
  lastGood = '';
  schedule();
  await running;
};

emit({
  event: 'ready',
  device,
  driver: handle.driver,
  adopted: handle.adopted,
  mtu: handle.mtu,
  publicKey: keys.publicKey.toBase64(),
});
// Watch the directory (created when missing): editors and atomic writers replace the file by rename.
await mkdir(dirname(peersFile), { recursive: true });
const watcher = watch(dirname(peersFile), (_type, name) => {
  if (name === null || name === basename(peersFile)) schedule();
});
schedule();

async function shutdown() {
  watcher.close();
  await running;
  route.close();
  await handle.close({ stopDaemon: !opts['keep-device'] });
  emit({ event: 'stopped' });
  process.exit(0);
}
process.once('SIGTERM', () => void shutdown());
process.once('SIGINT', () => void shutdown());
