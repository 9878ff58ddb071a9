import { TestNetns, describePrivileged, linkName } from '@veil/test-utils';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { XfrmClient, type XfrmAead } from '../../src/index.js';

// Two namespaces joined by a veth pair; the IPsec configuration (states and policies, both
// directions) is programmed only through node-xfrm-bindings. Addresses and routes use `ip`.
describePrivileged('ESP tunnel mode between two namespaces', ['root', 'netns'], () => {
  let a: TestNetns;
  let b: TestNetns;
  let xa: XfrmClient;
  let xb: XfrmClient;

  beforeAll(() => {
    a = TestNetns.create('xfa');
    b = TestNetns.create('xfb');
    const va = linkName('xfv');
    const vb = linkName('xfv');
    a.exec('ip', ['link', 'add', va, 'type', 'veth', 'peer', 'name', vb, 'netns', b.name]);
    for (const [ns, dev, v4, v6, in4, in6] of [
      [a, va, '192.168.77.1/24', 'fd77::1/64', '10.77.1.1/32', 'fd10:1::1/128'],
      [b, vb, '192.168.77.2/24', 'fd77::2/64', '10.77.2.1/32', 'fd10:2::1/128'],
    ] as const) {
      ns.exec('ip', ['addr', 'add', v4, 'dev', dev]);
      ns.exec('ip', ['addr', 'add', v6, 'dev', dev, 'nodad']);
      ns.exec('ip', ['link', 'set', dev, 'up']);
      // Inner (pod-like) addresses on loopback.
      ns.exec('ip', ['addr', 'add', in4, 'dev', 'lo']);
      ns.exec('ip', ['addr', 'add', in6, 'dev', 'lo', 'nodad']);
    }
    a.exec('ip', ['route', 'add', '10.77.2.0/24', 'via', '192.168.77.2', 'src', '10.77.1.1']);
    b.exec('ip', ['route', 'add', '10.77.1.0/24', 'via', '192.168.77.1', 'src', '10.77.2.1']);
    a.exec('ip', ['-6', 'route', 'add', 'fd10:2::/64', 'via', 'fd77::2', 'src', 'fd10:1::1']);
    b.exec('ip', ['-6', 'route', 'add', 'fd10:1::/64', 'via', 'fd77::1', 'src', 'fd10:2::1']);
    xa = XfrmClient.open({ netns: a.name });
    xb = XfrmClient.open({ netns: b.name });
  });
  afterAll(() => {
    xa?.close();
    xb?.close();
    a?.remove();
    b?.remove();
  });

  interface Side {
    x: XfrmClient;
    outer: string;
    inner: string;
  }

  /** Programs both directions on both sides: SA A->B, SA B->A, out/in policies. */
  async function program(
    left: Side,
    right: Side,
    aeadAB: XfrmAead,
    aeadBA: XfrmAead,
    spiAB: number,
    spiBA: number,
    reqid: number,
  ): Promise<void> {
    for (const side of [left, right]) {
      await side.x.addState({
        src: left.outer,
        dst: right.outer,
        spi: spiAB,
        reqid,
        mode: 'tunnel',
        aead: aeadAB,
        replayWindow: 32,
      });
      await side.x.addState({
        src: right.outer,
        dst: left.outer,
        spi: spiBA,
        reqid,
        mode: 'tunnel',
        aead: aeadBA,
        replayWindow: 32,
      });
    }
    for (const [me, peer] of [
      [left, right],
      [right, left],
    ] as const) {
      await me.x.addPolicy({
        selector: { src: me.inner, dst: peer.inner },
        dir: 'out',
        templates: [{ src: me.outer, dst: peer.outer, proto: 'esp', mode: 'tunnel', reqid }],
      });
      for (const dir of ['in', 'fwd'] as const) {
        await me.x.addPolicy({
          selector: { src: peer.inner, dst: me.inner },
          dir,
          templates: [{ src: peer.outer, dst: me.outer, proto: 'esp', mode: 'tunnel', reqid }],
        });
      }
    }
  }

  it('IPv4 inner/outer with AES-GCM: ping goes through the SAs', async () => {
    const k1 = new Uint8Array(20).fill(0xa1);
    const k2 = new Uint8Array(20).fill(0xb2);
    await program(
      { x: xa, outer: '192.168.77.1', inner: '10.77.1.0/24' },
      { x: xb, outer: '192.168.77.2', inner: '10.77.2.0/24' },
      { name: 'rfc4106(gcm(aes))', key: k1, icvLen: 128 },
      { name: 'rfc4106(gcm(aes))', key: k2, icvLen: 128 },
      0xa001,
      0xb001,
      1,
    );
    const r = a.tryExec('ping', ['-c', '3', '-i', '0.2', '-W', '5', '-I', '10.77.1.1', '10.77.2.1'], 60_000);
    expect(r.stdout + r.stderr).toContain('3 received');
    const out = await xa.getState({ dst: '192.168.77.2', spi: 0xa001 });
    const back = await xa.getState({ dst: '192.168.77.1', spi: 0xb001 });
    expect(out?.current?.packets).toBeGreaterThanOrEqual(3n);
    expect(back?.current?.packets).toBeGreaterThanOrEqual(3n);
    expect(out?.replay?.oseq).toBeGreaterThanOrEqual(3);
  });

  it('IPv6 inner/outer with ChaCha20-Poly1305: ping6 goes through the SAs', async () => {
    const k1 = new Uint8Array(36).fill(0xc3);
    const k2 = new Uint8Array(36).fill(0xd4);
    await program(
      { x: xa, outer: 'fd77::1', inner: 'fd10:1::/64' },
      { x: xb, outer: 'fd77::2', inner: 'fd10:2::/64' },
      { name: 'rfc7539esp(chacha20,poly1305)', key: k1, icvLen: 128 },
      { name: 'rfc7539esp(chacha20,poly1305)', key: k2, icvLen: 128 },
      0xa002,
      0xb002,
      2,
    );
    const r = a.tryExec('ping', ['-6', '-c', '3', '-i', '0.2', '-W', '5', '-I', 'fd10:1::1', 'fd10:2::1'], 60_000);
    expect(r.stdout + r.stderr).toContain('3 received');
    const inbound = await xb.getState({ dst: 'fd77::2', spi: 0xa002 });
    expect(inbound?.current?.packets).toBeGreaterThanOrEqual(3n);
  });

  it('removing the outbound SA breaks the path (traffic really used IPsec)', async () => {
    await xa.deleteState({ dst: '192.168.77.2', spi: 0xa001 });
    const r = a.tryExec('ping', ['-c', '1', '-W', '1', '-I', '10.77.1.1', '10.77.2.1'], 30_000);
    expect(r.status).not.toBe(0);
    await xa.flushPolicies();
    await xb.flushPolicies();
    await xa.flushStates();
    await xb.flushStates();
    expect(await xa.listStates()).toEqual([]);
    expect(await xb.listPolicies()).toEqual([]);
  });
});
