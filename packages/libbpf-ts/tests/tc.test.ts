import { readlinkSync } from 'node:fs';
import { TestNetns, describePrivileged, linkName } from '@veil/test-utils';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  BpfError,
  BpfObject,
  NotFoundError,
  ObjectSpec,
  SkBuff,
  attachTc,
  ifNameToIndex,
  listTc,
  queryTc,
} from '../src/index.js';
import { fixture, ipv4Packet } from './helpers.js';

const ownNetns = () => readlinkSync('/proc/thread-self/ns/net');

describePrivileged('tc attach/detach inside a test netns', ['root', 'bpf', 'netns'], () => {
  let ns: TestNetns;
  let obj: BpfObject;
  const dev = linkName('lbt');
  const peer = linkName('lbp');
  let ifindex = 0;
  const hostNs = ownNetns();

  const filters = (dir: 'ingress' | 'egress') => ns.exec('tc', ['filter', 'show', 'dev', dev, dir]);

  beforeAll(() => {
    ns = TestNetns.create('lbts');
    ns.exec('ip', ['link', 'add', dev, 'type', 'veth', 'peer', 'name', peer]);
    ns.exec('ip', ['link', 'set', dev, 'up']);
    // A foreign filter (loaded by iproute2, not by us) that must survive our detach.
    ns.exec('tc', ['qdisc', 'add', 'dev', dev, 'clsact']);
    ns.exec('tc', [
      'filter',
      'add',
      'dev',
      dev,
      'ingress',
      'prio',
      '10',
      'handle',
      '1',
      'bpf',
      'da',
      'obj',
      fixture('maps'),
      'sec',
      'tc',
    ]);
    obj = ObjectSpec.open(fixture('maps')).load();
    ifindex = ifNameToIndex(dev, ns.path);
  });

  afterAll(() => {
    obj?.close();
    ns?.remove();
  });

  it('ifNameToIndex looks up inside the netns and restores ours', () => {
    expect(ifindex).toBeGreaterThan(1);
    expect(ownNetns()).toBe(hostNs);
    expect(() => ifNameToIndex(dev)).toThrow(NotFoundError);
    expect(() => ifNameToIndex('lbtsnope', ns.path)).toThrow(`no interface named 'lbtsnope' in ${ns.path}`);
  });

  it('attaches with explicit priority/handle; detach removes only that filter', () => {
    const prog = obj.program('classify');
    const link = attachTc({ ifindex, direction: 'ingress', program: prog, priority: 20, handle: 7, netns: ns.path });
    expect(ownNetns()).toBe(hostNs);
    expect(link).toMatchObject({ ifindex, direction: 'ingress', priority: 20, handle: 7, netns: ns.path, progId: prog.id });
    const shown = filters('ingress');
    expect(shown).toMatch(/pref 20 bpf chain 0 handle 0x7 .*direct-action.* id \d+ name classify/);
    expect(shown).toMatch(/pref 10 bpf chain 0 handle 0x1 /);
    expect(queryTc({ ifindex, direction: 'ingress', priority: 20, handle: 7, netns: ns.path })).toEqual({ progId: prog.id });
    const listed = listTc({ ifindex, direction: 'ingress', netns: ns.path });
    expect(listed.map((f) => [f.priority, f.handle, f.kind, f.protocol])).toEqual([
      [10, 1, 'bpf', 0x0003],
      [20, 7, 'bpf', 0x0003],
    ]);
    // eslint-disable-next-line @typescript-eslint/no-unsafe-assignment -- vitest's asymmetric matchers (expect.any, objectContaining) are typed any
    expect(listed[0]?.bpf).toMatchObject({ directAction: true, name: expect.stringContaining('maps.bpf.o') });
    expect(listed[1]?.bpf).toMatchObject({ directAction: true, progId: prog.id, name: `classify:[${prog.id}]` });
    expect(listed[1]?.bpf?.tag).toMatch(/^[0-9a-f]{16}$/);

    // same priority+handle again: EEXIST unless replace
    const dup = (() => {
      try {
        attachTc({ ifindex, direction: 'ingress', program: obj.program('magic'), priority: 20, handle: 7, netns: ns.path });
      } catch (e) {
        return e;
      }
    })();
    expect(dup).toBeInstanceOf(BpfError);
    expect(dup).toMatchObject({ code: 'EEXIST', op: 'tc.attach' });
    const replaced = attachTc({
      ifindex,
      direction: 'ingress',
      program: obj.program('magic'),
      priority: 20,
      handle: 7,
      netns: ns.path,
      replace: true,
    });
    expect(queryTc({ ifindex, direction: 'ingress', priority: 20, handle: 7, netns: ns.path })?.progId).toBe(
      obj.program('magic').id,
    );

    expect(replaced.detach()).toBe(true);
    expect(link.detach()).toBe(false); // same filter, already gone
    expect(replaced.detach()).toBe(false); // idempotent
    const after = filters('ingress');
    expect(after).not.toMatch(/pref 20 /);
    expect(after).toMatch(/pref 10 bpf chain 0 handle 0x1 /);
    expect(ns.exec('tc', ['qdisc', 'show', 'dev', dev])).toMatch(/qdisc clsact/);
    expect(queryTc({ ifindex, direction: 'ingress', priority: 20, handle: 7, netns: ns.path })).toBeUndefined();
    expect(listTc({ ifindex, direction: 'ingress', netns: ns.path }).map((f) => f.priority)).toEqual([10]);
    expect(ownNetns()).toBe(hostNs);
  });

  it('listTc: an interface without clsact, or a hook without filters, lists nothing', () => {
    expect(listTc({ ifindex, direction: 'egress', netns: ns.path })).toEqual([]);
    const peerIndex = ifNameToIndex(peer, ns.path);
    expect(listTc({ ifindex: peerIndex, direction: 'ingress', netns: ns.path })).toEqual([]);
    expect(() => listTc({ ifindex, direction: 'ingress', netns: '/run/netns/lbts-nonexistent' })).toThrow(
      expect.objectContaining({ op: 'setns', code: 'ENOENT' }),
    );
  });

  it('egress with kernel-chosen priority and handle; survives closing the object until detach', () => {
    const o = ObjectSpec.open(fixture('maps')).load();
    const link = attachTc({ ifindex, direction: 'egress', program: o.program('ctx_echo'), netns: ns.path });
    o.close();
    expect(link.priority).toBeGreaterThan(0);
    expect(link.handle).toBeGreaterThan(0);
    expect(filters('egress')).toMatch(
      new RegExp(`pref ${link.priority} bpf chain 0 handle 0x${link.handle.toString(16)} .*name ctx_echo`),
    );
    expect(listTc({ ifindex, direction: 'egress', netns: ns.path })).toEqual([
      expect.objectContaining({
        priority: link.priority,
        handle: link.handle,
        // eslint-disable-next-line @typescript-eslint/no-unsafe-assignment -- vitest's asymmetric matchers (expect.any, objectContaining) are typed any
        bpf: expect.objectContaining({ progId: link.progId }),
      }),
    ]);
    expect(link.detach()).toBe(true);
    expect(filters('egress')).not.toMatch(/ctx_echo/);
    expect(filters('ingress')).toMatch(/pref 10 bpf/);
  });

  it('Program.run with netns resolves ctx ifindex inside that namespace', () => {
    const prog = obj.program('ctx_echo');
    const r = prog.run({ data: ipv4Packet('10.0.0.1'), ctx: SkBuff.encode({ ifindex, cb: [5] }), netns: ns.path });
    expect(ownNetns()).toBe(hostNs);
    expect(SkBuff.decode(r.ctx as Buffer)).toMatchObject({ ifindex, mark: 5 });
    expect(() => prog.run({ data: ipv4Packet('10.0.0.1'), ctx: SkBuff.encode({ ifindex: 9999 }), netns: ns.path })).toThrow(
      expect.objectContaining({ code: 'ENODEV', op: 'program.run' }),
    );
    expect(() => prog.run({ data: ipv4Packet('10.0.0.1'), netns: '/run/netns/lbts-nonexistent' })).toThrow(
      expect.objectContaining({ code: 'ENOENT', op: 'setns' }),
    );
    expect(ownNetns()).toBe(hostNs);
  });

  it('errors inside the netns still restore the caller netns', () => {
    const e = (() => {
      try {
        attachTc({ ifindex: 99999, direction: 'ingress', program: obj.program('classify'), priority: 30, netns: ns.path });
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(BpfError);
    expect((e as BpfError).op).toBe('tc.hook_create');
    expect(ownNetns()).toBe(hostNs);
    expect(() =>
      attachTc({ ifindex, direction: 'ingress', program: obj.program('classify'), netns: '/run/netns/lbts-nonexistent' }),
    ).toThrow(expect.objectContaining({ op: 'setns', code: 'ENOENT' }));
    expect(ownNetns()).toBe(hostNs);
  });
});
