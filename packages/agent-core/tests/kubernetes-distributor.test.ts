import { KubeApiServerDouble } from '@veil/kube-apiserver-double';
import { afterEach, describe, expect, it } from 'vitest';
import { KubernetesEventRecorder, KubernetesKeyDistributor, type DistributorEvent } from '../src/index.js';
import { FAKE_KEY_ANNOTATION } from '../src/fake/index.js';
import { kubeConfigFor, kubernetesDriver, toNodeObject } from './drivers.js';
import { harness, type Harness } from './harness.js';
import { captureLogger, keyFor, node, until } from './helpers.js';

/** Collects a distributor's events into an array in the background. */
function collect(d: KubernetesKeyDistributor): DistributorEvent[] {
  const out: DistributorEvent[] = [];
  void (async () => {
    for await (const ev of d.events()) out.push(ev);
  })();
  return out;
}

describe('KubernetesKeyDistributor (against the API server double, real client-node)', () => {
  let server: KubeApiServerDouble | undefined;
  let dist: KubernetesKeyDistributor | undefined;
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.stop();
    await dist?.close();
    await server?.close();
    h = dist = server = undefined;
  });

  function make(s: KubeApiServerDouble, local = 'local'): KubernetesKeyDistributor {
    const log = captureLogger();
    return new KubernetesKeyDistributor({
      kubeConfig: kubeConfigFor(s),
      nodeName: local,
      logger: log.logger,
      restartBackoff: { initialMs: 20, maxMs: 200 },
    });
  }

  it('lists, signals synced after the initial list, then streams changes', async () => {
    server = await KubeApiServerDouble.start();
    server.apply('nodes', toNodeObject(node(1)));
    server.apply('nodes', toNodeObject(node(2)));
    dist = make(server);
    const events = collect(dist);
    await until(() => dist!.synced);
    expect(events.map((e) => e.type)).toEqual(['upsert', 'upsert', 'synced']);
    server.modify('nodes', 'node-1', (o) => {
      (o.metadata.annotations as Record<string, string>)[FAKE_KEY_ANNOTATION] = keyFor(1, 1);
    });
    server.delete('nodes', 'node-2');
    await until(() => events.length === 5);
    expect(events[3]).toMatchObject({
      type: 'upsert',
      node: { name: 'node-1', annotations: { [FAKE_KEY_ANNOTATION]: keyFor(1, 1) } },
    });
    expect(events[4]).toEqual({ type: 'delete', name: 'node-2' });
    // Only veil.io/ annotations are carried.
    expect(Object.keys((events[0] as { node: { annotations: object } }).node.annotations)).toEqual([FAKE_KEY_ANNOTATION]);
  });

  it('publishLocal merge-patches only the local node, keeping other annotations', async () => {
    server = await KubeApiServerDouble.start();
    const local = toNodeObject({ ...node(0), name: 'local' });
    (local.metadata.annotations as Record<string, string>)['other.io/keep'] = 'yes';
    server.apply('nodes', local);
    server.apply('nodes', toNodeObject(node(1)));
    const before1 = server.get('nodes', 'node-1');
    dist = make(server);
    await dist.publishLocal({ 'veil.io/fake-public-key': keyFor(99), [FAKE_KEY_ANNOTATION + '-old']: null });
    const after = server.get('nodes', 'local')!;
    expect(after.metadata.annotations).toMatchObject({ 'other.io/keep': 'yes', [FAKE_KEY_ANNOTATION]: keyFor(99) });
    expect(server.get('nodes', 'node-1')).toEqual(before1);
    expect(server.requestCounts.get('PATCH')).toBe(1);
  });

  it('restarts the informer with backoff after the API server goes away and comes back', async () => {
    const d = await kubernetesDriver();
    server = d.server;
    d.upsert(node(1));
    h = harness(d.distributor('local'));
    await h.start();
    await h.reconciler.whenSynced();
    await until(() => h!.backend.peers.has('node-1'));
    await server.stop();
    // While the server is down, connections are refused: client-node's informer stops.
    await new Promise((r) => setTimeout(r, 300));
    d.upsert(node(1, { key: keyFor(1, 7) }));
    d.upsert(node(2));
    await server.restart();
    await until(
      () => h!.backend.peers.get('node-1')?.backend[FAKE_KEY_ANNOTATION] === keyFor(1, 7) && h!.backend.peers.has('node-2'),
      15_000,
    );
    expect(h.backend.callsOf('removePeer')).toEqual([]);
  });

  it('relists after 410 Gone and reports nodes deleted meanwhile', async () => {
    server = await KubeApiServerDouble.start();
    for (let i = 1; i <= 3; i++) server.apply('nodes', toNodeObject(node(i)));
    dist = make(server);
    const events = collect(dist);
    await until(() => dist!.synced);
    await server.stop();
    server.delete('nodes', 'node-2');
    server.apply('nodes', toNodeObject(node(4)));
    server.compact();
    await server.restart();
    await until(
      () =>
        events.some((e) => e.type === 'delete' && e.name === 'node-2') &&
        events.some((e) => e.type === 'upsert' && e.node.name === 'node-4'),
      15_000,
    );
    expect(dist.restarts).toBeGreaterThan(0);
    // Also: an open watch expired by the server (410 ERROR event) leads to a relist.
    const n = events.length;
    server.delete('nodes', 'node-3');
    server.compact({ expireWatches: true });
    server.apply('nodes', toNodeObject(node(5)));
    await until(() => events.slice(n).some((e) => e.type === 'upsert' && e.node.name === 'node-5'), 15_000);
    expect(events.slice(n).some((e) => e.type === 'delete' && e.name === 'node-3')).toBe(true);
  });

  it('lists and watches 1,000 nodes', async () => {
    const d = await kubernetesDriver();
    server = d.server;
    for (let i = 1; i <= 1000; i++) d.upsert(node(i));
    h = harness(d.distributor('local'));
    await h.start();
    await h.reconciler.whenSynced();
    expect(h.backend.peers.size).toBe(1000);
    for (let i = 1; i <= 1000; i++) d.upsert(node(i, { key: keyFor(i, 1) }));
    await until(
      () => [...h!.backend.peers.values()].every((p) => p.backend[FAKE_KEY_ANNOTATION] === keyFor(Number(p.name.slice(5)), 1)),
      30_000,
    );
    expect(h.datapath.ipcache.size).toBe(1000);
  });

  it('KubernetesEventRecorder posts core/v1 Events about the node', async () => {
    server = await KubeApiServerDouble.start();
    const rec = new KubernetesEventRecorder(kubeConfigFor(server), {
      namespace: 'default',
      component: 'veil-agent',
      host: 'local',
      logger: captureLogger().logger,
    });
    rec.record({ node: 'node-7', type: 'Warning', reason: 'PeerRefused', message: 'duplicate-key' });
    await rec.flush();
    const evs = server.list('events', 'default');
    expect(evs).toHaveLength(1);
    expect(evs[0]).toMatchObject({
      kind: 'Event',
      involvedObject: { kind: 'Node', name: 'node-7' },
      reason: 'PeerRefused',
      type: 'Warning',
      source: { component: 'veil-agent' },
    });
    expect(evs[0]?.metadata.name).toMatch(/^node-7\.veil\./);
  });
});
