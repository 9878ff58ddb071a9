import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DEFAULT_CONFIG,
  createLogger,
  parseCidr,
  type AgentConfig,
  type Cidr,
  type LocalMaterial,
  type PeerNode,
} from '@veil/agent-core';
import { Registry } from 'prom-client';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import {
  BOOT_ID_ANNOTATION,
  EPOCH_ANNOTATION,
  IpsecBackend,
  KEY_INDEX_ANNOTATION,
  TUNNEL_IPS_ANNOTATION,
} from '../src/backend.js';
import { keygen } from '../src/keyfile.js';
import { encryptMark, isOurState, spiFor, stateKeyIndex } from '../src/model.js';
import { RecordingEventRecorder } from '@veil/agent-core/fake';
import { ipsecConfig } from '../src/config.js';
import { FakeXfrm } from './fake-xfrm.js';

// The backend's decisions (rotation steps, reclaim, refusals, drift, epochs, prune) against an
// in-memory SAD/SPD; tests/kernel/esp-backend.test.ts runs the same paths on a kernel with ESP.
const silent = createLogger({ level: 'silent' });
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const BOOT_PEER = 'f7e6d5c4-b3a2-4190-8877-665544332211';

function peer(name: string, nodeId: number, ready: number, epoch = 0): PeerNode {
  return {
    name,
    internalIPv4: `192.168.90.${nodeId}`,
    internalIPv6: undefined,
    podCIDRs: [parseCidr(`10.90.${nodeId}.0/24`) as Cidr],
    nodeId,
    backend: {
      [BOOT_ID_ANNOTATION]: BOOT_PEER,
      [TUNNEL_IPS_ANNOTATION]: `192.168.90.${nodeId}`,
      [KEY_INDEX_ANNOTATION]: String(ready),
      [EPOCH_ANNOTATION]: String(epoch),
    },
  };
}

describe('IpsecBackend logic (in-memory XFRM)', () => {
  let dir: string;
  let keyFile: string;
  let x: FakeXfrm;
  let b: IpsecBackend;
  let materials: LocalMaterial[];
  let reprogrammed: (readonly string[])[];
  let registry: Registry;
  let events: RecordingEventRecorder;

  async function start(opts: { rotationMs?: number } = {}): Promise<void> {
    const config: AgentConfig = {
      ...DEFAULT_CONFIG,
      nodeName: 'n1',
      nodeId: 1,
      stateDir: join(dir, 'state'),
      encryption: { ...DEFAULT_CONFIG.encryption, type: 'ipsec', ipsec: { ...ipsecConfig.defaults, keyFile } },
    };
    b = new IpsecBackend(
      config,
      silent,
      {
        xfrm: x,
        tunnelIPs: { ipv4: '192.168.90.1' },
        bootId: '0b1e5c1d-3f0a-4c7e-9d2b-6a5f4e3d2c1b',
        driftIntervalMs: 0,
        keyPollIntervalMs: 3_600_000,
        keyRotationDurationMs: opts.rotationMs ?? 1000,
        underlayMtu: 1500,
        xfrmStatPath: join(dir, 'xfrm_stat'),
      },
      events,
    );
    registry = new Registry();
    b.registerMetrics(registry);
    materials = [];
    reprogrammed = [];
    b.onMaterialChange((m) => materials.push(m));
    b.onReprogramPeers((n) => reprogrammed.push(n));
    await b.init();
  }

  const indexes = (): number[] => [...new Set([...x.states.values()].filter(isOurState).map(stateKeyIndex))].sort();

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'veil-ipsec-logic-'));
    dirs.push(dir);
    keyFile = join(dir, 'keys');
    writeFileSync(keyFile, `${keygen({ spi: 3 })}\n`);
    writeFileSync(
      join(dir, 'xfrm_stat'),
      'XfrmInError             \t0\nXfrmInNoStates          \t5\nXfrmOutPolBlock         \t17\n',
    );
    x = new FakeXfrm();
    events = new RecordingEventRecorder();
  });

  it('init: base policies, material, mark steering with the ESP MTU; upsert is idempotent', async () => {
    await start();
    expect(x.policies.size).toBe(6);
    expect(b.localMaterial()).toEqual({
      [BOOT_ID_ANNOTATION]: '0b1e5c1d-3f0a-4c7e-9d2b-6a5f4e3d2c1b',
      [TUNNEL_IPS_ANNOTATION]: '192.168.90.1',
      [KEY_INDEX_ANNOTATION]: '3',
      [EPOCH_ANNOTATION]: '0',
    });
    expect(b.steering()).toEqual({
      kind: 'mark',
      value: 0x0e00,
      mask: 0xffffff00,
      keyIndexShift: 12,
      nodeIdShift: 16,
      mtu: 1446,
    });
    expect(await b.upsertPeer(peer('n2', 2, 3))).toEqual({ keyIndex: 3 });
    expect(x.states.size).toBe(2);
    expect(x.states.has(`192.168.90.2/${spiFor(1, 3)}`)).toBe(true);
    expect(x.states.has(`192.168.90.1/${spiFor(2, 3)}`)).toBe(true);
    const writes = x.writes;
    expect(await b.upsertPeer(peer('n2', 2, 3))).toEqual({ keyIndex: 3 });
    expect(x.writes).toBe(writes);
    const text = await registry.metrics();
    expect(text).toContain('veil_ipsec_xfrm_objects{kind="state",dir="out"} 1');
    expect(text).toContain('veil_ipsec_xfrm_objects{kind="state",dir="in"} 1');
    expect(text).toContain('veil_ipsec_xfrm_objects{kind="policy",dir="out"} 3');
    expect(text).toContain('veil_ipsec_key_index{which="current"} 3');
    expect(text).toContain('veil_ipsec_highest_seq 0');
    // XFRM error counters by type, read from xfrm_stat at each scrape.
    expect(text).toContain('veil_ipsec_xfrm_errors{type="XfrmInError"} 0');
    expect(text).toContain('veil_ipsec_xfrm_errors{type="XfrmInNoStates"} 5');
    expect(text).toContain('veil_ipsec_xfrm_errors{type="XfrmOutPolBlock"} 17');
    writeFileSync(
      join(dir, 'xfrm_stat'),
      'XfrmInError             \t0\nXfrmInNoStates          \t6\nXfrmOutPolBlock         \t17\n',
    );
    expect(await registry.metrics()).toContain('veil_ipsec_xfrm_errors{type="XfrmInNoStates"} 6');
    expect(text).toContain('veil_ipsec_rotation_in_progress 0');
    expect(text).toContain('veil_ipsec_rotation_reclaim_seconds 0');
    await b.close();
  });

  it('upsertPeer diffs against a cached view: one dump for many peers; a failed write, a drift compare and prune dump again', async () => {
    await start();
    let dumps = 0;
    const list = x.listStates.bind(x);
    x.listStates = () => {
      dumps++;
      return list();
    };
    for (let id = 2; id <= 21; id++) await b.upsertPeer(peer(`n${id}`, id, 3));
    expect(x.states.size).toBe(40);
    // At most one dump for twenty peers (init left no view): before, every upsert dumped.
    expect(dumps).toBeLessThanOrEqual(1);
    // The cached view holds what was written: unchanged peers write nothing.
    const writes = x.writes;
    for (let id = 2; id <= 21; id++) expect(await b.upsertPeer(peer(`n${id}`, id, 3))).toEqual({ keyIndex: 3 });
    expect(x.writes).toBe(writes);
    // A changed peer (new epoch: new keys) is replaced from the view, still without a dump.
    await b.upsertPeer(peer('n2', 2, 3, 1));
    expect(x.writes).toBeGreaterThan(writes);
    expect(dumps).toBeLessThanOrEqual(1);

    // A write the kernel refuses: the next call dumps again (only the kernel knows what landed).
    const add = x.addState.bind(x);
    x.addState = () => Promise.reject(new Error('injected failure'));
    await expect(b.upsertPeer(peer('n22', 22, 3))).rejects.toThrow(/injected failure/);
    x.addState = add;
    const beforeRetry = dumps;
    await b.upsertPeer(peer('n22', 22, 3));
    expect(dumps).toBe(beforeRetry + 1);
    expect(x.states.has(`192.168.90.22/${spiFor(1, 3)}`)).toBe(true);

    // Drift behind the backend's back is found by the compare (a fresh dump), which also refreshes
    // the view the next upsert uses.
    const lost = `192.168.90.1/${spiFor(5, 3)}`;
    expect(x.states.delete(lost)).toBe(true);
    const repaired = await b.repairDrift();
    expect(repaired.map((c) => c.op)).toEqual(['state add']);
    expect(x.states.has(lost)).toBe(true);
    const afterRepair = dumps;
    await b.upsertPeer(peer('n23', 23, 3));
    expect(dumps).toBe(afterRepair);

    // prune compares with a fresh dump too: objects someone else left for an unknown node go.
    const stray = structuredClone(x.states.get(`192.168.90.1/${spiFor(23, 3)}`)!);
    await x.addState({ ...stray, src: '192.168.90.99', spi: spiFor(99, 3) });
    const keep = new Set(Array.from({ length: 21 }, (_, i) => `n${i + 2}`));
    await b.prune(keep);
    expect(x.states.has(`192.168.90.1/${spiFor(99, 3)}`)).toBe(false);
    expect(x.states.has(`192.168.90.1/${spiFor(23, 3)}`)).toBe(false);
    expect(x.states.size).toBe(42);
    await b.close();
  });

  it('rotation: new states first, ready published, per-peer switch on readiness, reclaim after the window and all peers', async () => {
    await start({ rotationMs: 1000 });
    await b.upsertPeer(peer('n2', 2, 3));
    await b.upsertPeer(peer('n3', 3, 3));
    writeFileSync(keyFile, `${keygen({ spi: 4 })}\n`);
    expect(await b.reloadKeyFile()).toBe(true);
    // Step 1 before step 2: when the material says 4, the states for 4 are already there.
    expect(indexes()).toEqual([3, 4]);
    expect(materials.at(-1)?.[KEY_INDEX_ANNOTATION]).toBe('4');
    expect(reprogrammed.at(-1)).toEqual(['n2', 'n3']);
    // Step 3: a peer switches only when it reports 4.
    expect(await b.upsertPeer(peer('n2', 2, 3))).toEqual({ keyIndex: 3 });
    expect(await b.upsertPeer(peer('n2', 2, 4))).toEqual({ keyIndex: 4 });
    // The OUT policy for the new index matches the new mark.
    expect([...x.policies.values()].some((p) => p.mark?.value === encryptMark(4, 2))).toBe(true);
    const st = await b.status();
    expect(st.details).toMatchObject({
      currentIndex: 4,
      previousIndex: 3,
      rotation: { from: 3, to: 4, peersReady: 1, peersTotal: 2, waitingFor: ['n3'] },
    });
    expect(st.peers.map((p) => [p.name, p.keyIndex])).toEqual([
      ['n2', 4],
      ['n3', 3],
    ]);
    // Rotation progress as metrics: in progress, 1 of 2 peers ready, time left until reclaim.
    const during = await registry.metrics();
    expect(during).toContain('veil_ipsec_rotation_in_progress 1');
    expect(during).toContain('veil_ipsec_rotation_peers_ready 1');
    expect(during).toContain('veil_ipsec_rotation_peers_waiting 1');
    expect(during).toContain('veil_ipsec_key_index{which="previous"} 3');
    const reclaim = Number(/^veil_ipsec_rotation_reclaim_seconds (\S+)$/m.exec(during)?.[1]);
    // Counts down from keyRotationDuration (1 s here); 0 once the window has passed on a slow machine.
    expect(reclaim).toBeGreaterThanOrEqual(0);
    expect(reclaim).toBeLessThanOrEqual(1);
    // Step 4: not before the window, and not while n3 still uses 3.
    expect(await b.reclaim(Date.now())).toEqual([]);
    expect(await b.reclaim(Date.now() + 2000)).toEqual([]);
    await b.upsertPeer(peer('n3', 3, 4));
    expect(await b.reclaim(Date.now() + 2000)).toEqual([3]);
    expect(indexes()).toEqual([4]);
    expect([...x.policies.values()].some((p) => p.mark?.value === encryptMark(3, 2))).toBe(false);
    expect((await b.status()).details).toMatchObject({ rotation: undefined });
    const after = await registry.metrics();
    expect(after).toContain('veil_ipsec_rotation_in_progress 0');
    expect(after).toContain('veil_ipsec_rotation_peers_waiting 0');
    expect(after).toContain('veil_ipsec_rotation_reclaim_seconds 0');
    await b.close();
  });

  it('a refused key file keeps the running keys: parse errors, same index with new bytes, an index still in use', async () => {
    await start();
    await b.upsertPeer(peer('n2', 2, 3));
    const writes = x.writes;
    writeFileSync(keyFile, '3+ rfc4106(gcm(aes)) zz 128\n');
    expect(await b.reloadKeyFile()).toBe(false);
    expect((await b.status()).errors.join()).toMatch(/line 1: aead-key/);
    writeFileSync(keyFile, `${keygen({ spi: 3 })}\n`);
    expect(await b.reloadKeyFile()).toBe(false);
    expect((await b.status()).errors.join()).toMatch(/key index 3 is in use with another key/);
    expect(x.writes).toBe(writes);
    expect(b.localMaterial()[KEY_INDEX_ANNOTATION]).toBe('3');
    const metric = await registry.getSingleMetric('veil_ipsec_key_file_errors_total')!.get();
    expect(metric.values[0]?.value).toBe(2);
    expect(events.events.map((e) => [e.node, e.type, e.reason])).toEqual([
      ['n1', 'Warning', 'IPsecKeyFileRefused'],
      ['n1', 'Warning', 'IPsecKeyFileRefused'],
    ]);
    expect(events.events[0]!.message).toMatch(/line 1: aead-key.*key index 3 stays in use/);
    // Rotating to 4 and straight back to 3 while 3 is not yet reclaimed is refused too.
    writeFileSync(keyFile, `${keygen({ spi: 4 })}\n`);
    expect(await b.reloadKeyFile()).toBe(true);
    writeFileSync(keyFile, `${keygen({ spi: 3 })}\n`);
    expect(await b.reloadKeyFile()).toBe(false);
    expect((await b.status()).errors.join()).toMatch(/still in use by the previous rotation/);
    await b.close();
  });

  it('drift: a lost inbound SA comes back as it was; a lost outbound SA moves the node to a new key epoch', async () => {
    await start();
    await b.upsertPeer(peer('n2', 2, 3));
    const inKey = `192.168.90.1/${spiFor(2, 3)}`;
    const outKey = `192.168.90.2/${spiFor(1, 3)}`;
    const inBefore = x.states.get(inKey)!;
    x.states.delete(inKey);
    const c1 = await b.repairDrift();
    expect(c1).toEqual([{ op: 'state add', object: `192.168.90.1/spi 0x${spiFor(2, 3).toString(16)}` }]);
    expect(Buffer.from(x.states.get(inKey)!.aead!.key).equals(Buffer.from(inBefore.aead!.key))).toBe(true);
    expect(materials).toEqual([]);

    const outBefore = x.states.get(outKey)!;
    x.states.delete(outKey);
    x.policies.clear();
    const c2 = await b.repairDrift();
    expect(b.localMaterial()[EPOCH_ANNOTATION]).toBe('1');
    expect(materials.at(-1)?.[EPOCH_ANNOTATION]).toBe('1');
    expect(Buffer.from(x.states.get(outKey)!.aead!.key).equals(Buffer.from(outBefore.aead!.key))).toBe(false);
    expect(c2.filter((c) => c.op === 'policy add')).toHaveLength(7);
    expect((await b.status()).details).toMatchObject({ driftRepairs: 1 + c2.length });
    const repairs = await registry.getSingleMetric('veil_ipsec_xfrm_repairs_total')!.get();
    expect(repairs.values.find((v) => v.labels.op === 'policy add')?.value).toBe(7);
    expect(await b.repairDrift()).toEqual([]);
    await b.close();

    // The epoch survives a restart (it is in the state dir), so adoption rewrites nothing.
    const writes = x.writes;
    await start();
    expect(b.localMaterial()[EPOCH_ANNOTATION]).toBe('1');
    await b.upsertPeer(peer('n2', 2, 3));
    // Only the init probe state (added and removed) was written.
    expect(x.writes - writes).toBe(2);
    await b.close();
  });

  it('a peer re-keys when the other side publishes a new epoch or boot ID', async () => {
    await start();
    await b.upsertPeer(peer('n2', 2, 3));
    const inKey = `192.168.90.1/${spiFor(2, 3)}`;
    const before = Buffer.from(x.states.get(inKey)!.aead!.key);
    await b.upsertPeer(peer('n2', 2, 3, 1));
    const after = Buffer.from(x.states.get(inKey)!.aead!.key);
    expect(after.equals(before)).toBe(false);
    await b.close();
  });

  it('prune removes departed peers and whatever node IDs no peer claims; removePeer removes one', async () => {
    await start();
    await b.upsertPeer(peer('n2', 2, 3));
    await b.upsertPeer(peer('n3', 3, 3));
    await b.close();
    // A restarted agent hears of n3 only; n2 left while it was down.
    await start();
    await b.upsertPeer(peer('n3', 3, 3));
    expect(await b.prune(new Set(['n3']))).toEqual([]);
    expect([...x.states.values()].every((s) => !s.dst.endsWith('.2') && !s.src.endsWith('.2'))).toBe(true);
    expect(x.states.size).toBe(2);
    await b.removePeer('n3');
    expect(x.states.size).toBe(0);
    expect(x.policies.size).toBe(6);
    await b.close();
  });

  it('refuses a peer without the annotations or a family in common', async () => {
    await start();
    const p = peer('n2', 2, 3);
    await expect(
      b.upsertPeer({ ...p, backend: { ...p.backend, [EPOCH_ANNOTATION]: undefined as unknown as string } }),
    ).rejects.toThrow(/misses annotation veil.io\/ipsec-epoch/);
    await expect(b.upsertPeer({ ...p, backend: { ...p.backend, [TUNNEL_IPS_ANNOTATION]: 'fd90::2' } })).rejects.toThrow(
      /no address family/,
    );
    await b.close();
  });
});
