import { TestNetns, describePrivileged } from '@veil/test-utils';
import { XfrmClient } from 'node-xfrm-bindings';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { IpsecNotSupportedError, IpsecXfrmError } from '../src/errors.js';
import { parseKeyLine } from '../src/keyfile.js';
import { basePolicies, encryptMark, isOurPolicy, peerObjects } from '../src/model.js';
import { applyPlan, dumpXfrm, planDiff, planSize, policyId } from '../src/xfrm-sync.js';

// This host kernel has XFRM policies but no ESP: policies are programmed and diffed for real in
// a fresh netns; installing a state must fail with a clear IpsecNotSupportedError.
describePrivileged('XFRM policies by diff in a netns (host kernel)', ['root', 'netns'], () => {
  let ns: TestNetns;
  let x: XfrmClient;
  const key = parseKeyLine(`3+ rfc4106(gcm(aes)) ${'a1'.repeat(20)} 128`);
  const local = { nodeId: 1, ipv4: '192.168.60.1', ipv6: 'fd60::1', bootId: '0b1e5c1d-3f0a-4c7e-9d2b-6a5f4e3d2c1b', epoch: 0 };
  const peers = [2, 3].map((id) => ({
    name: `n${id}`,
    nodeId: id,
    ipv4: `192.168.60.${id}`,
    ipv6: `fd60::${id}`,
    bootId: 'f7e6d5c4-b3a2-4190-8877-665544332211',
    epoch: 0,
  }));
  const policiesOnly = () => ({
    states: [],
    policies: [...basePolicies(), ...peers.flatMap((p) => peerObjects(local, p, [key]).policies)],
  });

  beforeAll(() => {
    ns = TestNetns.create('ipsx');
    x = XfrmClient.open({ netns: ns.name });
    // Someone else's policy: must survive every diff.
    ns.exec('ip', ['xfrm', 'policy', 'add', 'src', '10.99.0.0/16', 'dst', '10.98.0.0/16', 'dir', 'out', 'priority', '10']);
  });
  afterAll(() => {
    x?.close();
    ns?.remove();
  });

  it('programs the BLOCK, IN/FWD and per-peer OUT policies; a second diff writes nothing', async () => {
    const plan = planDiff(policiesOnly(), await dumpXfrm(x), () => true);
    expect(plan.addPolicies).toHaveLength(6 + 4);
    const changes = await applyPlan(x, plan);
    expect(changes).toHaveLength(10);
    // The BLOCK policies went in before anything else (fail-closed).
    expect(changes.slice(0, 2).every((c) => c.object.includes('mark 0xe00/0xf00'))).toBe(true);
    const text = ns.exec('ip', ['xfrm', 'policy', 'list']);
    expect(text).toContain('action block');
    expect(text).toContain(`mark 0x${encryptMark(3, 2).toString(16)}/0xffffff00`);
    expect(text).toContain('level use');
    expect(planSize(planDiff(policiesOnly(), await dumpXfrm(x), () => true))).toBe(0);
  });

  it('a policy deleted or changed behind our back is found and repaired; the foreign one is untouched', async () => {
    ns.exec('ip', [
      'xfrm',
      'policy',
      'delete',
      'dir',
      'out',
      'src',
      '0.0.0.0/0',
      'dst',
      '0.0.0.0/0',
      'mark',
      `0x${encryptMark(3, 3).toString(16)}`,
      'mask',
      '0xffffff00',
    ]);
    ns.exec('ip', [
      '-6',
      'xfrm',
      'policy',
      'update',
      'dir',
      'out',
      'src',
      '::/0',
      'dst',
      '::/0',
      'mark',
      `0x${encryptMark(3, 2).toString(16)}`,
      'mask',
      '0xffffff00',
      'priority',
      '30288',
      'tmpl',
      'src',
      'fd60::1',
      'dst',
      'fd60::9',
      'proto',
      'esp',
      'reqid',
      String(0x7665696c),
      'mode',
      'tunnel',
    ]);
    const plan = planDiff(policiesOnly(), await dumpXfrm(x), () => true);
    expect(plan.addPolicies).toHaveLength(1);
    expect(plan.updatePolicies).toHaveLength(1);
    expect(plan.deletePolicies).toHaveLength(0);
    await applyPlan(x, plan);
    expect(planSize(planDiff(policiesOnly(), await dumpXfrm(x), () => true))).toBe(0);
    const all = await x.listPolicies();
    expect(all.filter((p) => !isOurPolicy(p)).map((p) => p.selector.src)).toEqual(['10.99.0.0/16']);
  });

  it('a removed peer loses exactly its objects (scoped diff)', async () => {
    const scoped = planDiff({ states: [], policies: [] }, await dumpXfrm(x), (o) => o.kind === 'peer' && o.nodeId === 3);
    expect(scoped.deletePolicies).toHaveLength(2);
    await applyPlan(x, scoped);
    const left = (await x.listPolicies()).filter(isOurPolicy);
    expect(left).toHaveLength(8);
    expect(left.some((p) => p.mark?.value === encryptMark(3, 3))).toBe(false);
  });

  it('pipelined additions: a refused item is named, the rest of its phase is in place', async () => {
    const extra = (id: number) =>
      peerObjects(local, { ...peers[0]!, name: `n${id}`, nodeId: id, ipv4: `192.168.60.${id}`, ipv6: `fd60::${id}` }, [key])
        .policies;
    const existing = (await x.listPolicies()).find((p) => isOurPolicy(p) && p.priority === 0x7650);
    expect(existing).toBeDefined();
    const plan = planDiff({ states: [], policies: [] }, { states: [], policies: [] }, () => true);
    plan.addPolicies.push(...extra(7), existing!, ...extra(8));
    const err = await applyPlan(x, plan).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(IpsecXfrmError);
    expect((err as IpsecXfrmError).object).toBe(policyId(existing!));
    expect((err as IpsecXfrmError).message).toMatch(/EEXIST/);
    const marks = (await x.listPolicies()).map((p) => p.mark?.value);
    for (const p of [...extra(7), ...extra(8)]) expect(marks).toContain(p.mark!.value);
    await applyPlan(x, { ...plan, addPolicies: [], deletePolicies: [...extra(7), ...extra(8)] });
  });

  it('installing states fails with IpsecNotSupportedError naming the state (no ESP here)', async () => {
    const want = peerObjects(local, peers[0]!, [key]);
    const plan = planDiff(
      { states: want.states, policies: [] },
      await dumpXfrm(x),
      (o) => o.kind === 'peer' && o.nodeId === 2,
      () => true,
    );
    const err = await applyPlan(x, plan).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(IpsecNotSupportedError);
    expect((err as IpsecNotSupportedError).message).toMatch(/cannot install ESP state 192\.168\.60\.2\/spi 0x103/);
    // The kernel names what is missing first: the AEAD algorithm here, ESP itself otherwise.
    expect((err as IpsecNotSupportedError).kernelMessage).toMatch(/^Requested (type|AEAD algorithm) not found$/);
    expect(await x.listStates()).toEqual([]);
  });
});
