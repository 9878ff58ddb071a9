import { ArgumentError } from 'libbpf-ts';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_CONFIG,
  datapathConfig,
  decodeIpsecMark,
  formatCidr,
  IPSEC_MARK_MASK,
  ipcacheKey,
  ipcacheValue,
  ipsecMark,
} from '../src/index.js';

const enc = <T, In>(c: { size: number; encode(v: In, b: Buffer, o: number): void; decode(b: Buffer, o: number): T }, v: In) => {
  const b = Buffer.alloc(c.size, 0xee);
  c.encode(v, b, 0);
  return b;
};

describe('ipcache key', () => {
  it('encodes an IPv4 CIDR as {32 + bits, family 4, pad, addr[16]}', () => {
    const b = enc(ipcacheKey, '10.1.2.0/24');
    expect(b.toString('hex')).toBe('38000000' + '04000000' + '0a010200' + '00'.repeat(12));
    expect(ipcacheKey.decode(b, 0)).toEqual({ family: 4, addr: '10.1.2.0', prefixLen: 24 });
  });

  it('encodes an IPv6 host and zeroes host bits of prefixes', () => {
    const host = enc(ipcacheKey, 'fd00::1');
    expect(host.readUInt32LE(0)).toBe(32 + 128);
    expect(host[4]).toBe(6);
    const net = enc(ipcacheKey, 'fd00:1:2:3:4::1/62');
    expect(ipcacheKey.decode(net, 0)).toEqual({ family: 6, addr: 'fd00:1:2::', prefixLen: 62 });
    expect(formatCidr(ipcacheKey.decode(net, 0))).toBe('fd00:1:2::/62');
  });

  it('accepts {addr, prefixLen} and rejects bad prefixes with a field name', () => {
    expect(ipcacheKey.decode(enc(ipcacheKey, { addr: '10.9.9.9', prefixLen: 8 }), 0)).toEqual({
      family: 4,
      addr: '10.0.0.0',
      prefixLen: 8,
    });
    expect(() => enc(ipcacheKey, '10.0.0.0/33')).toThrow(ArgumentError);
    expect(() => enc(ipcacheKey, 'nope')).toThrow(/key/);
    expect(() => enc(ipcacheKey, { addr: '10.0.0.0', prefixLen: -1 })).toThrow(/key\.prefixLen/);
  });
});

describe('ipcache value', () => {
  it('round-trips an IPv4 remote entry at the documented offsets', () => {
    const b = enc(ipcacheValue, { remote: true, encryptReady: true, nodeIp: '192.168.0.2', nodeId: 0x1234, keyIndex: 5 });
    expect(b.subarray(0, 4).toString('hex')).toBe('c0a80002');
    expect(b.readUInt32LE(16)).toBe(0);
    expect(b.readUInt16LE(20)).toBe(0x1234);
    expect(b[22]).toBe(0x02 | 0x04);
    expect(b[23]).toBe(5);
    expect(ipcacheValue.decode(b, 0)).toEqual({
      local: false,
      remote: true,
      encryptReady: true,
      isNode: false,
      nodeIp: '192.168.0.2',
      ifindex: 0,
      nodeId: 0x1234,
      keyIndex: 5,
    });
  });

  it('sets NODE_IP_V6 from an IPv6 node address and keeps IS_NODE / LOCAL', () => {
    const b = enc(ipcacheValue, { remote: true, isNode: true, nodeIp: 'fd01::2' });
    expect(b[22]).toBe(0x02 | 0x08 | 0x10);
    expect(ipcacheValue.decode(b, 0).nodeIp).toBe('fd01::2');
    const local = ipcacheValue.decode(enc(ipcacheValue, { local: true, ifindex: 77 }), 0);
    expect(local).toMatchObject({ local: true, remote: false, ifindex: 77, nodeIp: undefined });
  });

  it('rejects contradictions and out-of-range fields, naming the field', () => {
    expect(() => enc(ipcacheValue, { local: true, remote: true })).toThrow(/value\.local/);
    expect(() => enc(ipcacheValue, { keyIndex: 16 })).toThrow(/value\.keyIndex/);
    expect(() => enc(ipcacheValue, { nodeId: 70000 })).toThrow(/value\.nodeId/);
    expect(() => enc(ipcacheValue, { nodeIp: '300.1.1.1' })).toThrow(/value\.nodeIp/);
  });
});

describe('config', () => {
  it('encodes every field at the documented offset', () => {
    const b = enc(datapathConfig, {
      backend: 'ipsec',
      wgIfindex: 9,
      strict: true,
      nodeEncryption: false,
      allowRemoteNodeIdentities: true,
      mtu: 1420,
      encryptMark: 0xe00,
      encryptMarkMask: 0xf00,
      wgPort: 51871,
    });
    expect(b.length).toBe(28);
    expect([b.readUInt32LE(0), b.readUInt32LE(4), b.readUInt32LE(8), b.readUInt32LE(12)]).toEqual([2, 9, 0x5, 1420]);
    expect([b.readUInt32LE(16), b.readUInt32LE(20), b.readUInt16LE(24), b.readUInt16LE(26)]).toEqual([0xe00, 0xf00, 51871, 0]);
    expect(datapathConfig.decode(b, 0)).toMatchObject({
      backend: 'ipsec',
      strict: true,
      allowRemoteNodeIdentities: true,
      mtu: 1420,
    });
    expect(datapathConfig.decode(enc(datapathConfig, DEFAULT_CONFIG), 0)).toEqual(DEFAULT_CONFIG);
  });

  it('rejects bad values naming the field', () => {
    expect(() => enc(datapathConfig, { ...DEFAULT_CONFIG, backend: 'gre' as never })).toThrow(/config\.backend/);
    expect(() => enc(datapathConfig, { ...DEFAULT_CONFIG, mtu: 40 })).toThrow(/config\.mtu/);
    expect(() => enc(datapathConfig, { ...DEFAULT_CONFIG, wgPort: 70000 })).toThrow(/config\.wgPort/);
    expect(() => enc(datapathConfig, { ...DEFAULT_CONFIG, wgIfindex: -1 })).toThrow(/config\.wgIfindex/);
  });
});

describe('IPsec mark', () => {
  it("uses Cilium's layout and round-trips", () => {
    expect(ipsecMark({ keyIndex: 0, nodeId: 0 })).toBe(0x0e00);
    expect(ipsecMark({ keyIndex: 15, nodeId: 0xffff })).toBe(0xfffffe00);
    expect(ipsecMark({ keyIndex: 3, nodeId: 7 }) & IPSEC_MARK_MASK).toBe(0x00073e00);
    expect(decodeIpsecMark(0x00073e00)).toEqual({ keyIndex: 3, nodeId: 7 });
    expect(decodeIpsecMark(0x00070d00)).toBeUndefined();
  });

  it('rejects out-of-range fields', () => {
    expect(() => ipsecMark({ keyIndex: 16, nodeId: 1 })).toThrow(/keyIndex/);
    expect(() => ipsecMark({ keyIndex: 1, nodeId: 1 << 16 })).toThrow(/nodeId/);
  });
});
