import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Key, type DeviceConfig, type PeerConfig } from '../src/index.js';
import {
  UapiError,
  UapiProtocolError,
  UserspaceDriver,
  WgClient,
  WgDeviceNotFoundError,
  WgValidationError,
  encodeSet,
  parseGet,
  parseSetReply,
} from '../src/index.js';
import { FakeUapi, applySet, emptyDevice, getReply } from './fake-uapi.js';

// Keys and values of the example dialog in the cross-platform UAPI spec
// (https://www.wireguard.com/xplatform/, "Example Dialog").
const PRIV = 'e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a';
const P1 = 'b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33';
const PSK = '188515093e952f5f22e865cef3012e72f8b5f0b598ac0309d5dacce3b70fcf52';
const P2 = '58402e695ba1772b1cc9309755f043251ea77fdcf10fbe63989ceb7e19321376';
const P3 = '662e14fd594556f522604703340351258903b64f35553763f19426ab2a515c58';
const P4 = 'e818b58db5274087fcc1be5dc728cf53d3b5726b4cef6b9bab8f8f8c2452c25c';
const k = (hex: string) => Key.fromHex(hex);

const SPEC_SET: DeviceConfig = {
  privateKey: k(PRIV),
  listenPort: 12912,
  fwmark: 0,
  replacePeers: true,
  peers: [
    {
      publicKey: k(P1),
      presharedKey: k(PSK),
      endpoint: { address: 'abcd:23::33', port: 51820, scopeId: 2 },
      replaceAllowedIPs: true,
      allowedIPs: ['192.168.4.4/32'],
    },
    {
      publicKey: k(P2),
      endpoint: { address: '182.122.22.19', port: 3233 },
      persistentKeepalive: 111,
      replaceAllowedIPs: true,
      allowedIPs: ['192.168.4.6/32'],
    },
    {
      publicKey: k(P3),
      endpoint: { address: '5.152.198.39', port: 51820 },
      replaceAllowedIPs: true,
      allowedIPs: ['192.168.4.10/32', '192.168.4.11/32'],
    },
    { publicKey: k(P4), remove: true },
  ],
};

const SPEC_SET_TEXT = [
  'set=1',
  `private_key=${PRIV}`,
  'listen_port=12912',
  'fwmark=0',
  'replace_peers=true',
  `public_key=${P1}`,
  `preshared_key=${PSK}`,
  'endpoint=[abcd:23::33%2]:51820',
  'replace_allowed_ips=true',
  'allowed_ip=192.168.4.4/32',
  `public_key=${P2}`,
  'endpoint=182.122.22.19:3233',
  'persistent_keepalive_interval=111',
  'replace_allowed_ips=true',
  'allowed_ip=192.168.4.6/32',
  `public_key=${P3}`,
  'endpoint=5.152.198.39:51820',
  'replace_allowed_ips=true',
  'allowed_ip=192.168.4.10/32',
  'allowed_ip=192.168.4.11/32',
  `public_key=${P4}`,
  'remove=true',
  '',
  '',
].join('\n');

const SPEC_GET_REPLY = [
  `private_key=${PRIV}`,
  'listen_port=12912',
  `public_key=${P1}`,
  `preshared_key=${PSK}`,
  'allowed_ip=192.168.4.4/32',
  'endpoint=[abcd:23::33%2]:51820',
  `public_key=${P2}`,
  'tx_bytes=38333',
  'rx_bytes=2224',
  'allowed_ip=192.168.4.6/32',
  'persistent_keepalive_interval=111',
  'endpoint=182.122.22.19:3233',
  `public_key=${P3}`,
  'endpoint=5.152.198.39:51820',
  'allowed_ip=192.168.4.10/32',
  'allowed_ip=192.168.4.11/32',
  'tx_bytes=1212111',
  'rx_bytes=1929999999',
  'protocol_version=1',
  'errno=0',
  '',
  '',
].join('\n');

describe('UAPI writer', () => {
  it('writes the spec example set request byte for byte', () => {
    expect(encodeSet(SPEC_SET)).toBe(SPEC_SET_TEXT);
  });

  it('writes only what is set; undefined leaves things alone', () => {
    expect(encodeSet({})).toBe('set=1\n\n');
    expect(encodeSet({ peers: [{ publicKey: k(P1), updateOnly: true, persistentKeepalive: 0 }] })).toBe(
      `set=1\npublic_key=${P1}\nupdate_only=true\npersistent_keepalive_interval=0\n\n`,
    );
  });

  it('canonicalises allowed IPs and brackets IPv6 endpoints', () => {
    const t = encodeSet({
      peers: [{ publicKey: k(P1), endpoint: { address: 'fd00:0::1', port: 1 }, allowedIPs: ['10.1.2.3/16', 'fd00:0:0::5/64'] }],
    });
    expect(t).toContain('endpoint=[fd00:0::1]:1\n');
    expect(t).toContain('allowed_ip=10.1.0.0/16\nallowed_ip=fd00::/64\n');
  });

  it.each<[string, DeviceConfig, string]>([
    ['listenPort', { listenPort: 70000 }, 'listenPort'],
    ['fwmark', { fwmark: -1 }, 'fwmark'],
    ['privateKey', { privateKey: 'abc' as unknown as Key }, 'privateKey'],
    ['peer key', { peers: [{ publicKey: PRIV as unknown as Key }] }, 'peers[0].publicKey'],
    ['endpoint address', { peers: [{ publicKey: k(P1), endpoint: { address: 'nope', port: 1 } }] }, 'peers[0].endpoint.address'],
    ['endpoint port', { peers: [{ publicKey: k(P1), endpoint: { address: '1.2.3.4', port: 0 } }] }, 'peers[0].endpoint.port'],
    ['keepalive', { peers: [{ publicKey: k(P1), persistentKeepalive: 65536 }] }, 'peers[0].persistentKeepalive'],
    ['allowed ip', { peers: [{ publicKey: k(P1), allowedIPs: ['10.0.0.0/33'] }] }, 'peers[0].allowedIPs[0]'],
  ])('rejects a bad %s naming the field', (_n, cfg, field) => {
    try {
      encodeSet(cfg);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(WgValidationError);
      expect((e as WgValidationError).field).toBe(field);
      expect((e as Error).message).not.toContain(PRIV);
    }
  });
});

describe('UAPI parser', () => {
  it('parses the spec example get reply', () => {
    const dev = parseGet(SPEC_GET_REPLY, { name: 'wg0', secrets: true });
    expect(dev.name).toBe('wg0');
    expect(dev.privateKey?.toHex()).toBe(PRIV);
    expect(dev.publicKey?.equals(k(PRIV).publicKey())).toBe(true);
    expect(dev.listenPort).toBe(12912);
    expect(dev.fwmark).toBe(0);
    expect(dev.peers.map((p) => p.publicKey.toHex())).toEqual([P1, P2, P3]);
    const [a, b, c] = dev.peers;
    expect(a?.presharedKey?.toHex()).toBe(PSK);
    expect(a?.endpoint).toEqual({ address: 'abcd:23::33', port: 51820, scopeId: 2 });
    expect(a?.allowedIPs).toEqual(['192.168.4.4/32']);
    expect(b).toMatchObject({
      txBytes: 38333,
      rxBytes: 2224,
      persistentKeepalive: 111,
      endpoint: { address: '182.122.22.19', port: 3233 },
    });
    expect(c).toMatchObject({
      allowedIPs: ['192.168.4.10/32', '192.168.4.11/32'],
      txBytes: 1212111,
      rxBytes: 1929999999,
      protocolVersion: 1,
    });
    expect(c?.lastHandshake).toBeUndefined();
  });

  it('leaves secrets out unless asked', () => {
    const dev = parseGet(SPEC_GET_REPLY, { name: 'wg0' });
    expect(dev.privateKey).toBeUndefined();
    expect(dev.peers[0]?.presharedKey).toBeUndefined();
    expect(dev.publicKey).toBeDefined();
  });

  it('reads the last handshake time', () => {
    const d = parseGet(`public_key=${P1}\nlast_handshake_time_sec=1590081350\nlast_handshake_time_nsec=500000000\nerrno=0\n\n`, {
      name: 'x',
    });
    expect(d.peers[0]?.lastHandshake?.getTime()).toBe(1590081350500);
  });

  it('turns errno != 0 into UapiError with its code name', () => {
    try {
      parseGet('errno=19\n\n', { name: 'wg0' });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(UapiError);
      expect(e).toMatchObject({ errno: 19, code: 'ENODEV', operation: 'get', device: 'wg0' });
    }
    expect(() => parseSetReply('errno=22\n\n', 'wg0')).toThrow(expect.objectContaining({ name: 'UapiError', code: 'EINVAL' }));
    expect(() => parseSetReply('errno=0\n\n', 'wg0')).not.toThrow();
  });

  it('keeps the FIRST error and reports it at the end', () => {
    const text = `listen_port=99999\npublic_key=${P1}\nallowed_ip=bogus\nendpoint=nope\nerrno=0\n\n`;
    try {
      parseGet(text, { name: 'wg0' });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(UapiProtocolError);
      expect((e as UapiProtocolError).line).toBe(1);
      expect((e as Error).message).toContain('listen_port');
    }
  });

  it.each([
    ['missing errno', `listen_port=1\n\n`],
    ['no terminator', 'errno=0\n'],
    ['no key=value', 'hello\nerrno=0\n\n'],
    ['peer key before public_key', 'allowed_ip=10.0.0.0/8\nerrno=0\n\n'],
    ['bad key', 'public_key=xyz\nerrno=0\n\n'],
    ['data after errno', 'errno=0\nlisten_port=1\n\n'],
    ['bad errno', 'errno=abc\n\n'],
  ])('rejects %s with UapiProtocolError', (_n, text) => {
    expect(() => parseGet(text, { name: 'wg0' })).toThrow(UapiProtocolError);
  });

  it('never puts private key material into parse errors', () => {
    const text = `private_key=${PRIV.slice(0, 63)}Z\nerrno=0\n\n`;
    try {
      parseGet(text, { name: 'wg0' });
      expect.unreachable();
    } catch (e) {
      expect((e as Error).message).not.toContain(PRIV.slice(0, 40));
    }
  });

  it('survives random bytes: only typed errors, never a crash', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        try {
          parseGet(Buffer.from(bytes).toString('utf8'), { name: 'wg0' });
        } catch (e) {
          if (!(e instanceof UapiProtocolError || e instanceof UapiError)) throw e;
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('survives line-shaped garbage', () => {
    const line = fc.oneof(
      fc.constantFrom(
        'errno=0',
        'errno=5',
        `public_key=${P1}`,
        `private_key=${PRIV}`,
        'allowed_ip=10.0.0.0/8',
        'endpoint=[::1]:1',
        'endpoint=1.2.3.4:99999',
        'listen_port=1',
        '',
      ),
      fc.tuple(fc.string({ maxLength: 12 }), fc.string({ maxLength: 40 })).map(([a, b]) => `${a}=${b}`),
    );
    fc.assert(
      fc.property(fc.array(line, { maxLength: 30 }), (lines) => {
        try {
          parseGet(lines.join('\n'), { name: 'wg0' });
        } catch (e) {
          if (!(e instanceof UapiProtocolError || e instanceof UapiError)) throw e;
        }
      }),
      { numRuns: 2000 },
    );
  });
});

// Random configs → writer → a model daemon applying them → its get reply → parser.
const hexKey = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Key.fromBytes(b));
const v4 = fc.ipV4();
const v6 = fc.ipV6();
const endpoint = fc.oneof(
  fc.record({ address: v4, port: fc.integer({ min: 1, max: 65535 }) }),
  fc.record({ address: v6, port: fc.integer({ min: 1, max: 65535 }) }),
);
const cidr = fc.oneof(
  fc.tuple(v4, fc.integer({ min: 0, max: 32 })).map(([a, l]) => `${a}/${l}`),
  fc.tuple(v6, fc.integer({ min: 0, max: 128 })).map(([a, l]) => `${a}/${l}`),
);
const peer: fc.Arbitrary<PeerConfig> = fc.record(
  {
    publicKey: hexKey,
    presharedKey: hexKey,
    endpoint,
    persistentKeepalive: fc.integer({ min: 0, max: 65535 }),
    allowedIPs: fc.uniqueArray(cidr, { maxLength: 5 }),
  },
  { requiredKeys: ['publicKey'] },
);
const config: fc.Arbitrary<DeviceConfig> = fc.record(
  {
    privateKey: hexKey,
    listenPort: fc.integer({ min: 1, max: 65535 }),
    fwmark: fc.integer({ min: 1, max: 0xffffffff }),
    peers: fc.uniqueArray(peer, { maxLength: 6, selector: (p) => p.publicKey.toHex() }),
  },
  { requiredKeys: [] },
);

describe('writer → parser round trip (fast-check)', () => {
  it('what was written is what is read back', async () => {
    const { canonicalCidr, sameEndpoint } = await import('../src/ip.js');
    fc.assert(
      fc.property(config, (cfg) => {
        const model = emptyDevice();
        const lines = encodeSet({ ...cfg, replacePeers: true }).split('\n');
        expect(applySet(model, lines.slice(1, -2))).toBe(0);
        const dev = parseGet(getReply(model), { name: 'wg0', secrets: true });
        expect(dev.privateKey?.toHex()).toBe(cfg.privateKey?.toHex());
        expect(dev.listenPort).toBe(cfg.listenPort ?? 0);
        expect(dev.fwmark).toBe(cfg.fwmark ?? 0);
        const want = cfg.peers ?? [];
        expect(dev.peers.length).toBe(want.length);
        want.forEach((p, i) => {
          const got = dev.peers[i]!;
          expect(got.publicKey.equals(p.publicKey)).toBe(true);
          expect(got.presharedKey?.toHex()).toBe(p.presharedKey && !p.presharedKey.isZero() ? p.presharedKey.toHex() : undefined);
          expect(sameEndpoint(got.endpoint, p.endpoint)).toBe(true);
          expect(got.persistentKeepalive).toBe(p.persistentKeepalive ?? 0);
          expect([...got.allowedIPs].sort()).toEqual([...new Set((p.allowedIPs ?? []).map((c) => canonicalCidr(c, 'c')))].sort());
        });
      }),
      { numRuns: 300 },
    );
  });
});

describe('userspace driver against a fake UAPI server', () => {
  let fake: FakeUapi;
  beforeEach(async () => {
    fake = await FakeUapi.start('wgfake0');
  });
  afterEach(async () => {
    await fake.close();
  });

  it('configures and reads back through WgClient, reporting the userspace driver', async () => {
    const client = WgClient.fromDrivers([new UserspaceDriver({ socketDir: fake.dir })]);
    await client.configureDevice('wgfake0', SPEC_SET);
    expect(fake.requests[0]).toBe(SPEC_SET_TEXT);
    const served = await client.served('wgfake0');
    expect(served.driver).toBe('userspace');
    expect(served.device.listenPort).toBe(12912);
    expect(served.device.peers).toHaveLength(3);
    expect(fake.requests[1]).toBe('get=1\n\n');
    expect((await client.devices()).map((d) => d.name)).toEqual(['wgfake0']);
    client.close();
  });

  it('reports errno replies as UapiError', async () => {
    const drv = new UserspaceDriver({ socketDir: fake.dir });
    fake.canned = 'errno=1\n\n';
    await expect(drv.configureDevice('wgfake0', { listenPort: 1 })).rejects.toMatchObject({
      name: 'UapiError',
      code: 'EPERM',
      operation: 'set',
    });
    await expect(drv.device('wgfake0')).rejects.toMatchObject({ name: 'UapiError', code: 'EPERM', operation: 'get' });
  });

  it('reports garbage and hang-ups as UapiProtocolError', async () => {
    const drv = new UserspaceDriver({ socketDir: fake.dir });
    fake.canned = 'this is not uapi\n\n';
    await expect(drv.device('wgfake0')).rejects.toBeInstanceOf(UapiProtocolError);
    await expect(drv.configureDevice('wgfake0', {})).rejects.toBeInstanceOf(UapiProtocolError);
    fake.canned = undefined;
    fake.hangUp = true;
    await expect(drv.device('wgfake0')).rejects.toBeInstanceOf(UapiProtocolError);
  });

  it('times out on a daemon that never answers', async () => {
    const drv = new UserspaceDriver({ socketDir: fake.dir, timeoutMs: 200 });
    fake.canned = 'listen_port=1\n'; // never terminated
    await expect(drv.device('wgfake0')).rejects.toMatchObject({ name: 'UapiTransportError', code: 'ETIMEDOUT' });
  });

  it('a missing socket is "device not found"; validation happens before connecting', async () => {
    const client = WgClient.fromDrivers([new UserspaceDriver({ socketDir: fake.dir })]);
    await expect(client.device('nosuch0')).rejects.toBeInstanceOf(WgDeviceNotFoundError);
    await expect(client.configureDevice('wgfake0', { listenPort: -5 })).rejects.toBeInstanceOf(WgValidationError);
    expect(fake.requests).toHaveLength(0);
  });
});
