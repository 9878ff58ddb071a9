import { CoreV1Api, KubeConfig, PatchStrategy, Watch, setHeaderOptions, type V1Node } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { KubeApiServerDouble, jsonPatch, mergePatch, type KubeObject } from '../src/index.js';

function nodeObj(name: string, annotations: Record<string, string> = {}): KubeObject {
  return { metadata: { name, annotations }, spec: { podCIDRs: ['10.0.0.0/24'] } };
}

function clientFor(s: KubeApiServerDouble): { kc: KubeConfig; api: CoreV1Api } {
  const kc = new KubeConfig();
  kc.loadFromOptions(s.kubeConfigOptions());
  return { kc, api: kc.makeApiClient(CoreV1Api) };
}

interface Seen {
  type: string;
  object: KubeObject;
}

async function watch(
  kc: KubeConfig,
  path: string,
  params: Record<string, string | boolean>,
): Promise<{ events: Seen[]; done: Promise<unknown>; abort: () => void }> {
  const events: Seen[] = [];
  let resolveDone!: (e: unknown) => void;
  const done = new Promise((r) => (resolveDone = r));
  const ctl = await new Watch(kc).watch(
    path,
    params,
    (type, object) => events.push({ type, object: object as KubeObject }),
    (err) => resolveDone(err ?? null),
  );
  return { events, done, abort: () => ctl.abort() };
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const t = Date.now();
  while (!cond()) {
    if (Date.now() - t > ms) throw new Error('timeout');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('KubeApiServerDouble', () => {
  let s: KubeApiServerDouble | undefined;
  afterEach(async () => {
    await s?.close();
    s = undefined;
  });

  it('creates, gets, lists (with resourceVersion) and deletes through the real client', async () => {
    s = await KubeApiServerDouble.start();
    const { api } = clientFor(s);
    const created = await api.createNode({ body: nodeObj('n1') as V1Node });
    expect(created.metadata?.uid).toBeTruthy();
    expect(created.metadata?.resourceVersion).toBe('1');
    await expect(api.createNode({ body: nodeObj('n1') as V1Node })).rejects.toMatchObject({ code: 409 });
    expect((await api.readNode({ name: 'n1' })).metadata?.name).toBe('n1');
    await expect(api.readNode({ name: 'nope' })).rejects.toMatchObject({ code: 404 });
    const list = await api.listNode();
    expect(list.items.map((n) => n.metadata?.name)).toEqual(['n1']);
    expect(list.metadata?.resourceVersion).toBe('1');
    await api.deleteNode({ name: 'n1' });
    expect((await api.listNode()).items).toEqual([]);
    // Namespaced resources.
    await api.createNamespacedSecret({ namespace: 'kube-system', body: { metadata: { name: 'k' }, data: { key: 'YQ==' } } });
    expect((await api.readNamespacedSecret({ namespace: 'kube-system', name: 'k' })).data).toEqual({ key: 'YQ==' });
    expect((await api.listNamespacedSecret({ namespace: 'default' })).items).toEqual([]);
    expect((await api.listSecretForAllNamespaces()).items).toHaveLength(1);
  });

  it('merge patch and JSON patch, with 409 on a stale resourceVersion', async () => {
    s = await KubeApiServerDouble.start();
    const { api } = clientFor(s);
    s.create('nodes', nodeObj('n1', { a: '1', b: '2' }));
    const merged = await api.patchNode(
      { name: 'n1', body: { metadata: { annotations: { b: null, c: '3' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    expect(merged.metadata?.annotations).toEqual({ a: '1', c: '3' });
    const patched = await api.patchNode(
      {
        name: 'n1',
        body: [
          { op: 'test', path: '/metadata/annotations/a', value: '1' },
          { op: 'replace', path: '/metadata/annotations/a', value: 'x' },
        ],
      },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    );
    expect(patched.metadata?.annotations).toEqual({ a: 'x', c: '3' });
    await expect(
      api.patchNode(
        { name: 'n1', body: [{ op: 'test', path: '/metadata/annotations/a', value: 'nope' }] },
        setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
      ),
    ).rejects.toMatchObject({ code: 422 });
    await expect(
      api.patchNode(
        { name: 'n1', body: { metadata: { resourceVersion: '1', annotations: { d: '4' } } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      ),
    ).rejects.toMatchObject({ code: 409 });
    const cur = await api.readNode({ name: 'n1' });
    const stale = { ...cur, metadata: { ...cur.metadata, resourceVersion: '1' } };
    await expect(api.replaceNode({ name: 'n1', body: stale })).rejects.toMatchObject({ code: 409 });
    const ok = await api.replaceNode({ name: 'n1', body: cur });
    expect(Number(ok.metadata?.resourceVersion)).toBeGreaterThan(Number(cur.metadata?.resourceVersion));
  });

  it('watches from a resourceVersion with ADDED/MODIFIED/DELETED and BOOKMARK events', async () => {
    s = await KubeApiServerDouble.start({ bookmarkIntervalMs: 50 });
    const { kc } = clientFor(s);
    s.create('nodes', nodeObj('n1'));
    const rv = s.resourceVersion;
    s.create('nodes', nodeObj('n2'));
    const w = await watch(kc, '/api/v1/nodes', { resourceVersion: rv, allowWatchBookmarks: true });
    await until(() => w.events.length >= 1);
    s.modify('nodes', 'n1', (o) => ((o.metadata as { labels?: object }).labels = { x: 'y' }));
    s.delete('nodes', 'n2');
    await until(() => w.events.some((e) => e.type === 'BOOKMARK') && w.events.filter((e) => e.type !== 'BOOKMARK').length === 3);
    expect(w.events.filter((e) => e.type !== 'BOOKMARK').map((e) => [e.type, e.object.metadata.name])).toEqual([
      ['ADDED', 'n2'],
      ['MODIFIED', 'n1'],
      ['DELETED', 'n2'],
    ]);
    const bm = w.events.find((e) => e.type === 'BOOKMARK')!;
    // eslint-disable-next-line @typescript-eslint/no-unsafe-assignment -- vitest's asymmetric matchers (expect.any, objectContaining) are typed any
    expect(bm.object).toEqual({ kind: 'Node', apiVersion: 'v1', metadata: { resourceVersion: expect.any(String) } });
    w.abort();
    // Without resourceVersion: synthetic ADDED for the current state.
    const w2 = await watch(kc, '/api/v1/nodes', {});
    await until(() => w2.events.length === 1);
    expect(w2.events[0]).toMatchObject({ type: 'ADDED', object: { metadata: { name: 'n1' } } });
    w2.abort();
  });

  it('answers 410 Gone as a watch ERROR event with a Status after compaction', async () => {
    s = await KubeApiServerDouble.start();
    const { kc } = clientFor(s);
    s.create('nodes', nodeObj('n1'));
    s.create('nodes', nodeObj('n2'));
    s.compact();
    const w = await watch(kc, '/api/v1/nodes', { resourceVersion: '1' });
    expect(await w.done).toBeNull();
    expect(w.events).toEqual([
      // eslint-disable-next-line @typescript-eslint/no-unsafe-assignment -- vitest's asymmetric matchers (expect.any, objectContaining) are typed any
      { type: 'ERROR', object: expect.objectContaining({ kind: 'Status', code: 410, reason: 'Expired', status: 'Failure' }) },
    ]);
    // expireWatches: open watches get the 410 and are closed.
    const w2 = await watch(kc, '/api/v1/nodes', { resourceVersion: s.resourceVersion });
    await until(() => s!.openWatches === 1);
    s.compact({ expireWatches: true });
    await w2.done;
    expect(w2.events[0]).toMatchObject({ type: 'ERROR', object: { code: 410 } });
    expect(s.openWatches).toBe(0);
  });

  it('stops (connection refused, watches cut) and restarts on the same port with state kept', async () => {
    s = await KubeApiServerDouble.start();
    const { kc, api } = clientFor(s);
    s.create('nodes', nodeObj('n1'));
    const port = s.port;
    const w = await watch(kc, '/api/v1/nodes', { resourceVersion: s.resourceVersion });
    await until(() => s!.openWatches === 1);
    await s.stop();
    await w.done;
    await expect(api.listNode()).rejects.toThrow(/ECONNREFUSED/);
    await s.restart();
    expect(s.port).toBe(port);
    expect((await api.listNode()).items.map((n) => n.metadata?.name)).toEqual(['n1']);
  });

  it('close() ends open watches cleanly', async () => {
    s = await KubeApiServerDouble.start();
    const { kc } = clientFor(s);
    const w = await watch(kc, '/api/v1/nodes', {});
    await until(() => s!.openWatches === 1);
    await s.close();
    expect(await w.done).toBeNull();
    expect(s.running).toBe(false);
    s = undefined;
  });

  it('patch helpers follow RFC 7386 and RFC 6902', () => {
    expect(mergePatch({ a: { b: 1, c: 2 }, d: [1] }, { a: { b: null, e: 3 }, d: [2] })).toEqual({ a: { c: 2, e: 3 }, d: [2] });
    expect(
      jsonPatch({ a: [1, 2] }, [
        { op: 'add', path: '/a/-', value: 3 },
        { op: 'move', from: '/a/0', path: '/b' },
        { op: 'copy', from: '/b', path: '/c' },
      ]),
    ).toEqual({ a: [2, 3], b: 1, c: 1 });
    expect(() => jsonPatch({}, [{ op: 'remove', path: '/x' }])).toThrow(/does not exist/);
  });
});

describe('KubeApiServerDouble pagination', () => {
  it('pages lists with limit/continue and expires old continue tokens with 410', async () => {
    const s = await KubeApiServerDouble.start();
    try {
      const { api } = clientFor(s);
      for (let i = 0; i < 25; i++) s.create('nodes', nodeObj(`n${String(i).padStart(2, '0')}`));
      const names: string[] = [];
      let cont: string | undefined;
      let pages = 0;
      do {
        const page = await api.listNode({ limit: 10, ...(cont ? { _continue: cont } : {}) });
        names.push(...page.items.map((n) => n.metadata!.name!));
        expect(page.metadata?.resourceVersion).toBe('25');
        cont = page.metadata?._continue;
        pages++;
      } while (cont);
      expect(pages).toBe(3);
      expect(names).toHaveLength(25);
      const first = await api.listNode({ limit: 10 });
      s.create('nodes', nodeObj('later'));
      s.compact();
      await expect(api.listNode({ limit: 10, _continue: first.metadata!._continue! })).rejects.toMatchObject({ code: 410 });
    } finally {
      await s.close();
    }
  });
});
