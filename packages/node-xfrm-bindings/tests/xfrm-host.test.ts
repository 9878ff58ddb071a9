import { TestNetns, describePrivileged } from '@veil/test-utils';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { XfrmClient, XfrmKernelError, readXfrmStat, type XfrmPolicy } from '../src/index.js';

// Host kernel: XFRM policies work, states fail (no ESP). Everything happens in a namespace this
// suite creates, with the netlink socket opened inside it.
describePrivileged('XFRM on the host kernel (netns)', ['root', 'netns'], () => {
  let ns: TestNetns;
  let xfrm: XfrmClient;

  beforeAll(() => {
    ns = TestNetns.create('xf');
    xfrm = XfrmClient.open({ netns: ns.name });
  });
  afterAll(() => {
    xfrm?.close();
    ns?.remove();
  });
  beforeEach(async () => {
    await xfrm.flushPolicies();
  });

  const v4: XfrmPolicy = {
    selector: { src: '10.10.0.0/24', dst: '10.20.0.0/16', proto: 6, dstPort: 443 },
    dir: 'out',
    priority: 100,
    mark: { value: 0x20, mask: 0xf0 },
    ifId: 5,
    templates: [{ src: '192.0.2.1', dst: '192.0.2.2', proto: 'esp', mode: 'tunnel', reqid: 7 }],
  };
  const v6: XfrmPolicy = {
    selector: { src: 'fd00:a::/64', dst: 'fd00:b::/48' },
    dir: 'in',
    priority: 9,
    templates: [{ src: '2001:db8::1', dst: '2001:db8::2', proto: 'esp', mode: 'tunnel', reqid: 8, spi: 0x1234 }],
  };
  const idOf = (p: XfrmPolicy) => ({ selector: p.selector, dir: p.dir, mark: p.mark, ifId: p.ifId });

  it('adds, gets, dumps, updates, deletes and flushes v4 and v6 policies', async () => {
    await xfrm.addPolicy(v4);
    await xfrm.addPolicy(v6);

    const got4 = await xfrm.getPolicy(idOf(v4));
    expect(got4).toMatchObject({
      selector: v4.selector,
      dir: 'out',
      priority: 100,
      action: 'allow',
      mark: { value: 0x20, mask: 0xf0 },
      ifId: 5,
      templates: [{ src: '192.0.2.1', dst: '192.0.2.2', proto: 'esp', mode: 'tunnel', reqid: 7 }],
    });
    expect(got4?.index).toBeGreaterThan(0);
    const got6 = await xfrm.getPolicy(idOf(v6));
    expect(got6?.templates).toEqual([
      { src: '2001:db8::1', dst: '2001:db8::2', proto: 'esp', mode: 'tunnel', reqid: 8, spi: 0x1234 },
    ]);

    // iproute2 sees what we wrote.
    const shown = ns.exec('ip', ['xfrm', 'policy', 'list']);
    expect(shown).toContain('src 10.10.0.0/24 dst 10.20.0.0/16 proto tcp dport 443');
    expect(shown).toContain('mark 0x20/0xf0');
    expect(shown).toContain('src fd00:a::/64 dst fd00:b::/48');

    let all = await xfrm.listPolicies();
    expect(all.map((p) => p.selector.src).sort()).toEqual(['10.10.0.0/24', 'fd00:a::/64']);

    // Adding the same policy again is EEXIST.
    await expect(xfrm.addPolicy(v4)).rejects.toMatchObject({ name: 'XfrmKernelError', code: 'EEXIST', op: 'policy add' });

    await xfrm.updatePolicy({
      ...v4,
      priority: 5,
      templates: [{ src: '192.0.2.1', dst: '192.0.2.3', mode: 'tunnel', reqid: 9 }],
    });
    const updated = await xfrm.getPolicy(idOf(v4));
    expect(updated?.priority).toBe(5);
    expect(updated?.templates?.[0]).toMatchObject({ dst: '192.0.2.3', reqid: 9 });

    await xfrm.deletePolicy(idOf(v4));
    expect(await xfrm.getPolicy(idOf(v4))).toBeUndefined();
    all = await xfrm.listPolicies();
    expect(all).toHaveLength(1);
    expect(all[0]?.selector.dst).toBe('fd00:b::/48');

    // Deleting a policy that is gone is ENOENT, as a typed error.
    await expect(xfrm.deletePolicy(idOf(v4))).rejects.toMatchObject({ code: 'ENOENT', errno: 2 });

    await xfrm.flushPolicies();
    expect(await xfrm.listPolicies()).toEqual([]);
  });

  it('distinguishes policies by mark and deletes by index', async () => {
    const a = { ...v4, mark: { value: 1, mask: 0xff }, ifId: undefined };
    const b = { ...v4, mark: { value: 2, mask: 0xff }, ifId: undefined };
    await xfrm.addPolicy(a);
    await xfrm.addPolicy(b);
    const gotB = await xfrm.getPolicy({ selector: b.selector, dir: 'out', mark: b.mark });
    expect(gotB?.mark).toEqual({ value: 2, mask: 0xff });
    expect(await xfrm.getPolicy({ selector: b.selector, dir: 'out', mark: { value: 3, mask: 0xff } })).toBeUndefined();
    await xfrm.deletePolicy({ index: gotB!.index!, dir: 'out', mark: b.mark });
    const left = await xfrm.listPolicies();
    expect(left.map((p) => p.mark?.value)).toEqual([1]);
  });

  it('block policies and policies without templates round-trip', async () => {
    await xfrm.addPolicy({ selector: { src: '0.0.0.0/0', dst: '198.51.100.0/24' }, dir: 'fwd', action: 'block', priority: 1 });
    const [p] = await xfrm.listPolicies();
    expect(p).toMatchObject({ dir: 'fwd', action: 'block', priority: 1, selector: { src: '0.0.0.0/0', dst: '198.51.100.0/24' } });
    expect(p?.templates).toBeUndefined();
  });

  it('reads and sets SPD hash thresholds', async () => {
    await xfrm.addPolicy(v4);
    await xfrm.setSpdHashThresholds({ ipv4: { localBits: 24, remoteBits: 20 }, ipv6: { localBits: 64, remoteBits: 56 } });
    const info = await xfrm.getSpdInfo();
    expect(info.outCount).toBe(1);
    expect(info.ipv4Threshold).toEqual({ localBits: 24, remoteBits: 20 });
    expect(info.ipv6Threshold).toEqual({ localBits: 64, remoteBits: 56 });
    expect(info.hashMaxBuckets).toBeGreaterThan(0);
    expect(ns.exec('ip', ['xfrm', 'policy', 'count'])).toContain('OUT 1');
  });

  it('state add fails cleanly without ESP: typed error with errno, code and extack', async () => {
    const err = await xfrm
      .addState({
        src: '10.0.0.1',
        dst: '10.0.0.2',
        spi: 0x1000,
        reqid: 1,
        mode: 'tunnel',
        auth: { name: 'hmac(sha256)', key: new Uint8Array(32).fill(1) },
        crypt: { name: 'cbc(aes)', key: new Uint8Array(16).fill(2) },
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(XfrmKernelError);
    const k = err as XfrmKernelError;
    expect(k.op).toBe('state add');
    expect(k.code).toBe('EPROTONOSUPPORT');
    expect(k.errno).toBe(93);
    expect(k.extack).toBe('Requested type not found');
    expect(k.message).toContain('Requested type not found');

    // GCM is missing too: the kernel names the algorithm.
    const gcm = await xfrm
      .addState({
        src: '10.0.0.1',
        dst: '10.0.0.2',
        spi: 0x1001,
        mode: 'tunnel',
        aead: { name: 'rfc4106(gcm(aes))', key: new Uint8Array(20), icvLen: 128 },
      })
      .then(
        () => undefined,
        (e: unknown) => e as XfrmKernelError,
      );
    expect(gcm).toMatchObject({ name: 'XfrmKernelError', code: 'ENOSYS', extack: 'Requested AEAD algorithm not found' });

    expect(await xfrm.listStates()).toEqual([]);
    expect(await xfrm.getState({ dst: '10.0.0.2', spi: 0x1000 })).toBeUndefined();
    await xfrm.flushStates();
  });

  it('dumps 5,000 policies', async () => {
    const many: XfrmPolicy[] = [];
    for (let i = 0; i < 5000; i++) {
      many.push({
        selector: { src: `10.${(i >> 8) & 0xff}.${i & 0xff}.0/24`, dst: `172.16.${(i >> 8) & 0xff}.${i & 0xff}/32` },
        dir: i % 2 ? 'in' : 'out',
        priority: i,
        templates: [{ src: '192.0.2.1', dst: '192.0.2.2', mode: 'tunnel', reqid: i + 1 }],
      });
    }
    await xfrm.addPolicies(many);
    const dumped = await xfrm.listPolicies();
    expect(dumped).toHaveLength(5000);
    const byPrio = new Map(dumped.map((p) => [p.priority, p]));
    for (const i of [0, 1, 2500, 4999]) {
      const p = byPrio.get(i);
      expect(p?.selector.src).toBe(many[i]!.selector.src);
      expect(p?.templates?.[0]?.reqid).toBe(i + 1);
    }
    expect((await xfrm.getSpdInfo()).inCount).toBe(2500);
    await xfrm.deletePolicies(many.map((p) => ({ selector: p.selector, dir: p.dir })));
    expect(await xfrm.listPolicies()).toEqual([]);
  });

  it('a failing item in a batch is reported with its index', async () => {
    const ok: XfrmPolicy = { selector: { src: '10.1.1.0/24', dst: '10.2.2.0/24' }, dir: 'out' };
    await xfrm.addPolicy(ok);
    const fresh: XfrmPolicy = { selector: { src: '10.3.3.0/24', dst: '10.4.4.0/24' }, dir: 'out' };
    const third: XfrmPolicy = { selector: { src: '10.5.5.0/24', dst: '10.6.6.0/24' }, dir: 'out' };
    await expect(xfrm.addPolicies([fresh, ok, third])).rejects.toMatchObject({ code: 'EEXIST', index: 1 });
    // Every item was attempted: the ones around the refused one are in place.
    expect((await xfrm.listPolicies()).map((p) => p.selector.src).sort()).toEqual(['10.1.1.0/24', '10.3.3.0/24', '10.5.5.0/24']);
  });

  it('deletePolicies resolved to indexes deletes exact matches only and keeps kernel errors', async () => {
    const a: XfrmPolicy = { selector: { src: '10.5.0.0/24', dst: '10.6.0.0/24' }, dir: 'out', mark: { value: 1, mask: 0xff } };
    const b: XfrmPolicy = { ...a, mark: { value: 2, mask: 0xff } };
    const c: XfrmPolicy = { ...a, dir: 'in' };
    await xfrm.addPolicies([a, b, c]);
    const missing = { selector: { src: '10.7.0.0/24', dst: '10.6.0.0/24' }, dir: 'out' as const };
    await expect(
      xfrm.deletePolicies([{ selector: a.selector, dir: 'out', mark: a.mark }, missing], { resolveIndexes: true }),
    ).rejects.toMatchObject({ name: 'XfrmKernelError', code: 'ENOENT', index: 1 });
    const left = await xfrm.listPolicies();
    expect(left.map((p) => `${p.dir}:${p.mark?.value ?? '-'}`).sort()).toEqual(['in:1', 'out:2']);
    await xfrm.deletePolicies(
      [
        { selector: b.selector, dir: 'out', mark: b.mark },
        { selector: c.selector, dir: 'in', mark: c.mark },
      ],
      { resolveIndexes: true },
    );
    expect(await xfrm.listPolicies()).toEqual([]);
  });

  it('reads /proc/net/xfrm_stat', async () => {
    const stats = await readXfrmStat();
    expect(stats.XfrmInNoStates).toBeTypeOf('number');
    expect(Object.keys(stats).length).toBeGreaterThan(20);
  });
});
