import { TestNetns, describePrivileged } from '@veil/test-utils';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { XfrmClient, type XfrmState } from '../../src/index.js';

// Kernel lane only (Debian 6.1 under qemu, ESP + GCM + ChaCha20-Poly1305 loaded).
describePrivileged('XFRM states round-trip on a kernel with ESP', ['root', 'netns'], () => {
  let ns: TestNetns;
  let xfrm: XfrmClient;

  beforeAll(() => {
    ns = TestNetns.create('xfst');
    xfrm = XfrmClient.open({ netns: ns.name });
  });
  afterAll(() => {
    xfrm?.close();
    ns?.remove();
  });
  beforeEach(async () => {
    await xfrm.flushStates();
  });

  const key = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);
  const strip = (s: XfrmState | undefined): XfrmState | undefined => {
    if (!s) return s;
    const c = { ...s };
    delete c.current;
    delete c.stats;
    delete c.replay;
    return c;
  };

  it('AES-GCM (rfc4106) IPv4 tunnel: add, get, list, update, delete', async () => {
    const st: XfrmState = {
      src: '192.0.2.1',
      dst: '192.0.2.2',
      spi: 0x1001,
      reqid: 11,
      mode: 'tunnel',
      aead: { name: 'rfc4106(gcm(aes))', key: key(20, 0x11), icvLen: 128 },
      replayWindow: 32,
    };
    await xfrm.addState(st);
    const got = await xfrm.getState({ dst: st.dst, spi: st.spi });
    expect(strip(got)).toEqual({ ...st, proto: 'esp', esn: false });
    expect(got?.current?.addTime).toBeGreaterThan(0);
    expect(got?.replay).toEqual({ oseq: 0, seq: 0, oseqHi: 0, seqHi: 0 });
    expect(ns.exec('ip', ['xfrm', 'state', 'list'])).toContain(
      'aead rfc4106(gcm(aes)) 0x1111111111111111111111111111111111111111 128',
    );

    await xfrm.updateState({ ...st, limits: { hardBytes: 1_000_000n, softAddExpiresSeconds: 3600 } });
    const upd = await xfrm.getState({ dst: st.dst, spi: st.spi });
    expect(upd?.limits).toEqual({ hardBytes: 1_000_000n, softAddExpiresSeconds: 3600 });

    await expect(xfrm.addState(st)).rejects.toMatchObject({ name: 'XfrmKernelError', code: 'EEXIST' });
    expect(await xfrm.listStates()).toHaveLength(1);
    await xfrm.deleteState({ src: st.src, dst: st.dst, spi: st.spi });
    expect(await xfrm.getState({ dst: st.dst, spi: st.spi })).toBeUndefined();
    await expect(xfrm.deleteState({ dst: st.dst, spi: st.spi })).rejects.toMatchObject({ code: 'ESRCH' });
  });

  it('ChaCha20-Poly1305 (rfc7539esp) IPv6 with if_id', async () => {
    const st: XfrmState = {
      src: '2001:db8::1',
      dst: '2001:db8::2',
      spi: 0x2002,
      reqid: 22,
      mode: 'tunnel',
      aead: { name: 'rfc7539esp(chacha20,poly1305)', key: key(36, 0x22), icvLen: 128 },
      ifId: 42,
    };
    await xfrm.addState(st);
    const got = await xfrm.getState({ dst: st.dst, spi: st.spi });
    expect(strip(got)).toEqual({ ...st, proto: 'esp', esn: false, replayWindow: 0 });
  });

  it('CBC(AES) + HMAC-SHA256 with ESN, a 128-packet window, marks and an output mark', async () => {
    const st: XfrmState = {
      src: '10.9.0.1',
      dst: '10.9.0.2',
      spi: 0x3003,
      reqid: 33,
      mode: 'transport',
      auth: { name: 'hmac(sha256)', key: key(32, 0x33), truncLen: 128 },
      crypt: { name: 'cbc(aes)', key: key(32, 0x44) },
      esn: true,
      replayWindow: 128,
      mark: { value: 0x500, mask: 0xf00 },
      outputMark: { value: 0xe00, mask: 0xf00 },
    };
    await xfrm.addState(st);
    const got = await xfrm.getState({ dst: st.dst, spi: st.spi, mark: st.mark });
    expect(strip(got)).toEqual({ ...st, proto: 'esp' });
    expect(got?.replay).toEqual({ oseq: 0, seq: 0, oseqHi: 0, seqHi: 0 });
    // Without the mark the SA is not found.
    expect(await xfrm.getState({ dst: st.dst, spi: st.spi })).toBeUndefined();
    const shown = ns.exec('ip', ['xfrm', 'state', 'list']);
    expect(shown).toContain('flag esn');
    expect(shown).toContain('mark 0x500/0xf00');
  });

  it('flushes by protocol and lists nothing afterwards', async () => {
    await xfrm.addState({
      src: '10.0.0.1',
      dst: '10.0.0.2',
      spi: 0x10,
      mode: 'tunnel',
      aead: { name: 'rfc4106(gcm(aes))', key: key(36, 1), icvLen: 96 },
    });
    await xfrm.addState({
      src: '10.0.0.1',
      dst: '10.0.0.3',
      spi: 0x11,
      mode: 'tunnel',
      aead: { name: 'rfc4106(gcm(aes))', key: key(28, 2), icvLen: 64 },
    });
    const all = await xfrm.listStates();
    expect(all.map((s) => s.aead?.icvLen).sort()).toEqual([64, 96]);
    await xfrm.flushStates({ proto: 'esp' });
    expect(await xfrm.listStates()).toEqual([]);
  });
});
