import { afterEach, describe, expect, it } from 'vitest';
import { IpcacheFlags, parseCidr, type Cidr, type IpcacheEntry, type PeerNode } from '../src/index.js';
import { INTERNAL_IPS_ANNOTATION, NODE_ID_ANNOTATION } from '../src/types/peer.js';
import { FAKE_KEY_ANNOTATION, FakeBackend, FakeDatapath } from '../src/fake/index.js';
import { inMemoryDriver, kubernetesDriver, type ClusterDriver } from './drivers.js';
import { harness, type Harness } from './harness.js';
import { keyFor, node, until } from './helpers.js';

async function counterValue(
  h: Harness,
  name: 'refusedPeers' | 'reconcileErrors',
  labels: Record<string, string>,
): Promise<number> {
  const m = await h.metrics[name].get();
  return (
    m.values.find((v) => Object.entries(labels).every(([k, val]) => (v.labels as Record<string, unknown>)[k] === val))?.value ?? 0
  );
}

async function peersGauge(h: Harness, state: string): Promise<number> {
  const m = await h.metrics.peers.get();
  return m.values.find((v) => v.labels.state === state)?.value ?? 0;
}

function peerOf(i: number): PeerNode {
  const n = node(i);
  return {
    name: n.name,
    internalIPv4: n.internalIPs[0],
    internalIPv6: undefined,
    podCIDRs: n.podCIDRs.map((c) => parseCidr(c) as Cidr),
    nodeId: 0,
    backend: { [FAKE_KEY_ANNOTATION]: keyFor(i) },
  };
}

function entryOf(i: number): IpcacheEntry {
  const n = node(i);
  return {
    nodeName: n.name,
    nodeIPs: [...n.internalIPs],
    podCIDRs: [...n.podCIDRs],
    flags: IpcacheFlags.REMOTE | IpcacheFlags.ENCRYPT_READY,
    keyIndex: 0,
    nodeId: 0,
  };
}

for (const makeDriver of [async () => inMemoryDriver(), kubernetesDriver]) {
  describe(`Reconciler`, () => {
    let h: Harness | undefined;
    let d: ClusterDriver | undefined;
    afterEach(async () => {
      await h?.stop();
      await d?.close();
      h = undefined;
      d = undefined;
    });

    async function setup(opts: Parameters<typeof harness>[1] = {}): Promise<{ h: Harness; d: ClusterDriver }> {
      d = await makeDriver();
      h = harness(d.distributor('local'), opts);
      return { h, d };
    }

    async function settle(hh: Harness): Promise<void> {
      await hh.reconciler.whenSynced();
      // Let watch events arrive, then drain.
      await new Promise((r) => setTimeout(r, 30));
      await hh.reconciler.idle();
    }

    it(`[${makeDriver === kubernetesDriver ? 'kubernetes' : 'in-memory'}] programs added nodes, updates changed ones, removes deleted ones`, async () => {
      const { h, d } = await setup();
      d.upsert(node(1));
      d.upsert(node(2));
      d.upsert({ ...node(0), name: 'local' });
      await h.start();
      await settle(h);
      expect([...h.backend.peers.keys()].sort()).toEqual(['node-1', 'node-2']);
      expect(h.datapath.ipcache.get('node-1')).toEqual(entryOf(1));
      expect(await peersGauge(h, 'active')).toBe(2);
      expect(h.reconciler.peers().map((p) => p.name)).not.toContain('local');

      d.upsert(node(3));
      d.upsert(node(1, { internalIPs: ['192.168.50.1'] }));
      await until(() => h.backend.peers.get('node-1')?.internalIPv4 === '192.168.50.1' && h.backend.peers.has('node-3'));
      await until(() => h.datapath.ipcache.get('node-1')?.nodeIPs[0] === '192.168.50.1');

      d.delete('node-2');
      await until(() => !h.backend.peers.has('node-2') && !h.datapath.ipcache.has('node-2'));
      expect(h.backend.callsOf('removePeer').map((c) => c.name)).toEqual(['node-2']);
      await until(async () => (await peersGauge(h, 'active')) === 2);
      expect(h.events.events).toEqual([]);
    });

    it('refuses a public key already held by another node; the first holder keeps it', async () => {
      const { h, d } = await setup();
      d.upsert(node(1));
      await h.start();
      await settle(h);
      d.upsert(node(2, { key: keyFor(1) }));
      await until(() => h.reconciler.peers().find((p) => p.name === 'node-2')?.state === 'refused');
      expect(h.backend.peers.has('node-2')).toBe(false);
      expect(h.backend.peers.get('node-1')?.backend[FAKE_KEY_ANNOTATION]).toBe(keyFor(1));
      expect(await counterValue(h, 'refusedPeers', { reason: 'duplicate-key' })).toBe(1);
      expect(h.events.events).toHaveLength(1);
      expect(h.events.events[0]).toMatchObject({ node: 'node-2', type: 'Warning', reason: 'PeerRefused' });
      expect(h.events.events[0]?.message).toContain(`annotations[${FAKE_KEY_ANNOTATION}]`);
      expect(h.log.text()).toMatch(/"node":"node-2".*"field":"annotations\[veil.io\/fake-public-key\]"/);
      // The holder leaves: the refused node gets its turn.
      d.delete('node-1');
      await until(() => h.backend.peers.has('node-2'));
      expect(h.reconciler.peers().find((p) => p.name === 'node-2')?.state).toBe('active');
    });

    it('a key rotation (same addresses and CIDRs) is still checked for duplicate keys, and keeps the node holding its CIDR, address and ID', async () => {
      const { h, d } = await setup();
      d.upsert(node(1, { annotations: { [NODE_ID_ANNOTATION]: '7' } }));
      d.upsert(node(2));
      await h.start();
      await settle(h);
      // Rotations: only the key changes (the reconciler re-checks only the key).
      d.upsert(node(1, { key: keyFor(1, 1), annotations: { [NODE_ID_ANNOTATION]: '7' } }));
      d.upsert(node(1, { key: keyFor(1, 2), annotations: { [NODE_ID_ANNOTATION]: '7' } }));
      await until(() => h.backend.peers.get('node-1')?.backend[FAKE_KEY_ANNOTATION] === keyFor(1, 2));
      // node-2 rotates to node-1's current key: refused, keeps its last good key.
      d.upsert(node(2, { key: keyFor(1, 2) }));
      await until(() => h.reconciler.peers().find((p) => p.name === 'node-2')?.state === 'refused');
      expect(h.reconciler.peers().find((p) => p.name === 'node-2')?.refusal).toMatchObject({
        reason: 'duplicate-key',
        conflictsWith: 'node-1',
      });
      expect(h.backend.peers.get('node-2')?.backend[FAKE_KEY_ANNOTATION]).toBe(keyFor(2));
      // node-1's old keys were released: node-2 may take one.
      d.upsert(node(2, { key: keyFor(1, 1) }));
      await until(() => h.backend.peers.get('node-2')?.backend[FAKE_KEY_ANNOTATION] === keyFor(1, 1));
      // node-1 still holds its pod CIDR, address and node ID after the rotations.
      d.upsert(node(3, { podCIDRs: node(1).podCIDRs }));
      d.upsert(node(4, { internalIPs: node(1).internalIPs }));
      d.upsert(node(5, { annotations: { [NODE_ID_ANNOTATION]: '7' } }));
      await until(() => h.reconciler.peers().filter((p) => p.state === 'refused').length === 3);
      const byName = new Map(h.reconciler.peers().map((p) => [p.name, p]));
      expect(byName.get('node-3')?.refusal).toMatchObject({ reason: 'cidr-overlap', conflictsWith: 'node-1' });
      expect(byName.get('node-4')?.refusal).toMatchObject({ reason: 'duplicate-node-ip', conflictsWith: 'node-1' });
      expect(byName.get('node-5')?.refusal).toMatchObject({ reason: 'duplicate-node-id', conflictsWith: 'node-1' });
      expect(byName.get('node-1')?.state).toBe('active');
    });

    it('refuses pod CIDRs overlapping another node and a duplicate node ID', async () => {
      const { h, d } = await setup();
      d.upsert(node(1, { annotations: { [NODE_ID_ANNOTATION]: '7' } }));
      await h.start();
      await settle(h);
      d.upsert(node(2, { podCIDRs: ['10.0.1.128/25'] }));
      d.upsert(node(3, { podCIDRs: ['10.0.0.0/16'] }));
      d.upsert(node(4, { annotations: { [NODE_ID_ANNOTATION]: '7' } }));
      d.upsert(node(5));
      await until(() => h.backend.peers.has('node-5'));
      await h.reconciler.idle();
      const byName = new Map(h.reconciler.peers().map((p) => [p.name, p]));
      expect(byName.get('node-2')?.refusal).toMatchObject({
        reason: 'cidr-overlap',
        field: 'spec.podCIDRs',
        conflictsWith: 'node-1',
      });
      expect(byName.get('node-3')?.refusal).toMatchObject({ reason: 'cidr-overlap', conflictsWith: 'node-1' });
      expect(byName.get('node-4')?.refusal).toMatchObject({ reason: 'duplicate-node-id', conflictsWith: 'node-1' });
      expect(await counterValue(h, 'refusedPeers', { reason: 'cidr-overlap' })).toBe(2);
      expect(await counterValue(h, 'refusedPeers', { reason: 'duplicate-node-id' })).toBe(1);
      expect([...h.backend.peers.keys()].sort()).toEqual(['node-1', 'node-5']);
      expect(h.events.events.map((e) => e.node).sort()).toEqual(['node-2', 'node-3', 'node-4']);
    });

    it('keeps the last good state when an update is malformed, naming the field', async () => {
      const { h, d } = await setup();
      d.upsert(node(1));
      await h.start();
      await settle(h);
      const good = h.backend.peers.get('node-1');
      const cases: [Parameters<typeof node>[1], string, string][] = [
        [{ key: 'not-a-key' }, 'malformed-annotation', `annotations[${FAKE_KEY_ANNOTATION}]`],
        [{ podCIDRs: ['10.0.1.7/24'] }, 'malformed-cidr', 'spec.podCIDRs'],
        [{ podCIDRs: ['10.0.1.0/33'] }, 'malformed-cidr', 'spec.podCIDRs'],
        [
          { annotations: { [INTERNAL_IPS_ANNOTATION]: '192.168.0.1,not-an-ip' } },
          'malformed-ip',
          `annotations[${INTERNAL_IPS_ANNOTATION}]`,
        ],
        [{ annotations: { [NODE_ID_ANNOTATION]: '70000' } }, 'malformed-annotation', `annotations[${NODE_ID_ANNOTATION}]`],
      ];
      for (const [i, [over, reason, field]] of cases.entries()) {
        d.upsert(node(1, over));
        await until(() => h.events.events.length === i + 1, 10_000, `${reason} on ${field}`);
        const v = h.reconciler.peers().find((p) => p.name === 'node-1')!;
        expect(v.refusal?.reason).toBe(reason);
        expect(v.programmed).toBe(true);
        expect(h.backend.peers.get('node-1')).toEqual(good);
        expect(h.datapath.ipcache.get('node-1')).toEqual(entryOf(1));
        expect(h.log.text()).toContain(`refusing update of node node-1: ${field}`);
      }
      expect(h.events.events).toHaveLength(cases.length);
      expect(await counterValue(h, 'refusedPeers', { reason: 'malformed-cidr' })).toBe(2);
      expect(await counterValue(h, 'refusedPeers', { reason: 'malformed-ip' })).toBe(1);
      expect(await counterValue(h, 'refusedPeers', { reason: 'malformed-annotation' })).toBe(2);
      expect(h.backend.callsOf('removePeer')).toEqual([]);
      // A good update is accepted again.
      d.upsert(node(1, { internalIPs: ['192.168.9.9'] }));
      await until(() => h.backend.peers.get('node-1')?.internalIPv4 === '192.168.9.9');
      expect(h.reconciler.peers().find((p) => p.name === 'node-1')?.refusal).toBeUndefined();
    });

    it('treats a node without its key as pending, not refused', async () => {
      const { h, d } = await setup();
      d.upsert(node(1, { key: undefined }));
      await h.start();
      await settle(h);
      expect(h.reconciler.peers()[0]).toMatchObject({ name: 'node-1', state: 'pending', programmed: false });
      expect(h.events.events).toEqual([]);
      d.upsert(node(1));
      await until(() => h.backend.peers.has('node-1'));
    });

    it('adopts pre-existing backend and datapath state on restart: no teardown, stale peers pruned after sync', async () => {
      const backend = new FakeBackend({ preexisting: [peerOf(1), peerOf(2), peerOf(9)] });
      const datapath = new FakeDatapath([entryOf(1), entryOf(2), entryOf(9)]);
      const { h, d } = await setup({ backend, datapath });
      d.upsert(node(1));
      d.upsert(node(2));
      await h.start();
      await settle(h);
      // No teardown of live peers, no rewrite of unchanged ones.
      expect(backend.callsOf('removePeer')).toEqual([]);
      expect(backend.callsOf('upsertPeer').every((c) => !c.changed)).toBe(true);
      expect(datapath.calls.filter((c) => c.op === 'upsert' || c.op === 'remove')).toEqual([]);
      // Exactly one prune, after sync, removing only the stale one.
      expect(backend.callsOf('prune')).toEqual([
        // eslint-disable-next-line @typescript-eslint/no-unsafe-assignment -- vitest's asymmetric matchers (expect.any/stringMatching) are typed any
        { op: 'prune', keep: expect.arrayContaining(['node-1', 'node-2']), removed: ['node-9'] },
      ]);
      expect([...backend.peers.keys()].sort()).toEqual(['node-1', 'node-2']);
      expect([...datapath.ipcache.keys()].sort()).toEqual(['node-1', 'node-2']);
    });

    it('retries failed applies with exponential backoff until they succeed', async () => {
      const backend = new FakeBackend();
      backend.failUpsert.add('node-1');
      const { h, d } = await setup({ backend, reconciler: { initialRetryMs: 5, maxRetryMs: 40 } });
      d.upsert(node(1));
      d.upsert(node(2));
      await h.start();
      await until(() => h.backend.peers.has('node-2'));
      await until(async () => (await counterValue(h, 'reconcileErrors', { stage: 'backend' })) >= 3);
      const v = h.reconciler.peers().find((p) => p.name === 'node-1');
      expect(v?.state).toBe('error');
      expect(v?.lastError).toContain('injected failure');
      backend.failUpsert.delete('node-1');
      await until(() => h.backend.peers.has('node-1'));
      await until(() => h.reconciler.peers().find((p) => p.name === 'node-1')?.state === 'active');
      expect(h.log.text()).toContain('peer reconcile failed; will retry');
    });

    it('coalesces bursts of updates to one node', async () => {
      const { h, d } = await setup();
      await h.start();
      await settle(h);
      for (let v = 0; v < 50; v++) d.upsert(node(1, { key: keyFor(1, v) }));
      await until(() => h.backend.peers.get('node-1')?.backend[FAKE_KEY_ANNOTATION] === keyFor(1, 49));
      await h.reconciler.idle();
      expect(h.backend.callsOf('upsertPeer').length).toBeLessThan(50);
    });

    it('refuses a key that the local node already holds', async () => {
      const { h, d } = await setup();
      d.upsert({ ...node(0), name: 'local' });
      await h.start();
      await settle(h);
      d.upsert(node(5, { key: keyFor(0) }));
      await until(() => h.reconciler.peers().find((p) => p.name === 'node-5')?.refusal?.conflictsWith === 'local');
      expect(h.backend.peers.has('local')).toBe(false);
      expect(h.backend.peers.has('node-5')).toBe(false);
    });
  });
}
