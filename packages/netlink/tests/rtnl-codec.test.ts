import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  NetlinkDecodeError,
  attr,
  type NetlinkRequest,
  type NetlinkSocket,
  NetlinkValidationError,
  addAddress,
  addRoute,
  addRule,
  createDummy,
  createVeth,
  decodeAddress,
  decodeLink,
  decodeNlmsgs,
  decodeRoute,
  decodeRule,
  deleteAddress,
  deleteLink,
  deleteRoute,
  deleteRule,
  encodeNlmsg,
  formatIp,
  listRoutes,
  parseIp,
  parsePrefix,
  setLinkMtu,
  setLinkUp,
  sysctlPath,
  writeSysctl,
} from '../src/index.js';
import { NLM_F_ACK, NLM_F_REQUEST } from '../src/constants.js';

// Requests captured with `strace -f -e trace=sendmsg -e write=3 -xx ip ...` (iproute2 6.1).
// The seq field (bytes 8..11) is zeroed before comparing.
const GOLDEN: Record<string, string> = {
  veth: '64000000100005060dd1026b00000000000000000000000000000000000000000d0003007665746863617030000000003400120008000100766574682800020024000100000000000000000000000000000000000d000300766574686361703100000000',
  up: '20000000100005000dd1026b0000000000000000030000000100000001000000',
  mtu: '28000000100005000dd1026b00000000000000000300000000000000000000000800040078050000',
  addr4: '28000000140005060ed1026b000000000218000003000000080002000a000001080001000a000001',
  addr6:
    '40000000140005060ed1026b000000000a4002000300000014000200fd00000000000000000000000000000114000100fd000000000000000000000000000001',
  route100: '38000000180005060ed1026b00000000021000006403000100000000080001000a010000080005000a0000020c0008000800020078050000',
  route1000: '34000000180005060fd1026b00000000021000000003fd0100000000080001000a02000008000f00e80300000800040003000000',
  rule: '34000000200005060fd1026b0000000002000000640000010000000008000a000002000008001000000f000008000600e8030000',
  ruledel: '34000000210005000fd1026b0000000002000000640000000000000008000a000002000008001000000f000008000600e8030000',
  routedel: '240000001900050010d1026b00000000021000006400ff0000000000080001000a010000',
  addrdel: '280000001500050010d1026b000000000218000003000000080002000a000001080001000a000001',
  del: '200000001100050010d1026b0000000000000000030000000000000000000000',
};

function golden(name: string): Buffer {
  const b = Buffer.from(GOLDEN[name]!, 'hex');
  b.writeUInt32LE(0, 8);
  return b;
}

/** A stand-in socket that records what would be sent (as the real socket frames it) and ACKs. */
function recorder(): { sock: NetlinkSocket; sent: Buffer[] } {
  const sent: Buffer[] = [];
  const fake = {
    protocol: 0,
    async request(req: NetlinkRequest) {
      sent.push(encodeNlmsg({ type: req.type, flags: NLM_F_REQUEST | NLM_F_ACK | (req.flags ?? 0), seq: 0 }, req.payload));
      return [];
    },
    async dump(req: NetlinkRequest) {
      sent.push(encodeNlmsg({ type: req.type, flags: NLM_F_REQUEST | 0x300 | (req.flags ?? 0), seq: 0 }, req.payload));
      return [];
    },
  };
  return { sock: fake as unknown as NetlinkSocket, sent };
}

describe('rtnetlink requests match iproute2 byte for byte', () => {
  const cases: [string, (s: NetlinkSocket) => Promise<void>][] = [
    ['veth', (s) => createVeth(s, { name: 'vethcap0', peerName: 'vethcap1' })],
    ['up', (s) => setLinkUp(s, 3)],
    ['mtu', (s) => setLinkMtu(s, 3, 1400)],
    ['addr4', (s) => addAddress(s, { link: 3, address: '10.0.0.1/24' })],
    ['addr6', (s) => addAddress(s, { link: 3, address: 'fd00::1/64', nodad: true })],
    ['route100', (s) => addRoute(s, { dst: '10.1.0.0/16', gateway: '10.0.0.2', table: 100, mtu: 1400 })],
    ['route1000', (s) => addRoute(s, { dst: '10.2.0.0/16', dev: 3, table: 1000 })],
    ['rule', (s) => addRule(s, { fwmark: 0x200, fwmask: 0xf00, table: 100, priority: 1000 })],
    ['ruledel', (s) => deleteRule(s, { fwmark: 0x200, fwmask: 0xf00, table: 100, priority: 1000 })],
    ['routedel', (s) => deleteRoute(s, { dst: '10.1.0.0/16', table: 100 })],
    ['addrdel', (s) => deleteAddress(s, { link: 3, address: '10.0.0.1/24' })],
    ['del', (s) => deleteLink(s, 3)],
  ];
  for (const [name, run] of cases) {
    it(name, async () => {
      const { sock, sent } = recorder();
      await run(sock);
      expect(sent).toHaveLength(1);
      expect(sent[0]!.toString('hex')).toBe(golden(name).toString('hex'));
    });
  }

  it('dump filters: listRoutes({table: 1000}) puts the table in RTA_TABLE', async () => {
    const { sock, sent } = recorder();
    await listRoutes(sock, { table: 1000 });
    const [m] = decodeNlmsgs(sent[0]!);
    expect(m!.flags).toBe(NLM_F_REQUEST | 0x300);
    expect(m!.payload.subarray(12).toString('hex')).toBe('08000f00e8030000');
  });
});

describe('decoders read what the encoders wrote (request payloads parse as objects)', () => {
  it('route', async () => {
    const { sock, sent } = recorder();
    await addRoute(sock, { dst: 'fd00:1::/64', gateway: 'fe80::1', dev: 7, table: 4242, mtu: 1280, priority: 5 });
    const r = decodeRoute(decodeNlmsgs(sent[0]!)[0]!);
    expect(r).toMatchObject({ family: 6, dst: 'fd00:1::/64', gateway: 'fe80::1', oif: 7, table: 4242, mtu: 1280, priority: 5 });
  });
  it('rule', async () => {
    const { sock, sent } = recorder();
    await addRule(sock, { family: 6, src: 'fd00::/8', fwmark: 1, table: 300, priority: 7, invert: true });
    const r = decodeRule(decodeNlmsgs(sent[0]!)[0]!);
    expect(r).toMatchObject({ family: 6, src: 'fd00::/8', fwmark: 1, table: 300, priority: 7, invert: true, action: 1 });
  });
  it('address', async () => {
    const { sock, sent } = recorder();
    await addAddress(sock, { link: 4, address: '192.168.7.9/30', peer: '192.168.7.10' });
    const a = decodeAddress(decodeNlmsgs(sent[0]!)[0]!);
    expect(a).toMatchObject({ family: 4, cidr: '192.168.7.9/30', peer: '192.168.7.10', index: 4 });
  });
  it('link', async () => {
    const { sock, sent } = recorder();
    await createDummy(sock, { name: 'dm0', mtu: 9000, up: true });
    const l = decodeLink(decodeNlmsgs(sent[0]!)[0]!);
    expect(l).toMatchObject({ name: 'dm0', mtu: 9000, kind: 'dummy', up: true });
  });
});

describe('validation happens before any syscall, naming the field', () => {
  const { sock, sent } = recorder();
  const bad: [string, () => Promise<unknown>, string][] = [
    ['long name', () => createDummy(sock, { name: 'a-very-long-name0' }), 'name'],
    ['slash in name', () => createDummy(sock, { name: 'a/b' }), 'name'],
    ['empty peer', () => createVeth(sock, { name: 'v0', peerName: '' }), 'peerName'],
    ['same peer', () => createVeth(sock, { name: 'v0', peerName: 'v0' }), 'peerName'],
    ['mtu', () => setLinkMtu(sock, 'eth0', 20), 'mtu'],
    ['bad cidr', () => addAddress(sock, { link: 1, address: '10.0.0.300/24' }), 'address'],
    ['bad prefix', () => addAddress(sock, { link: 1, address: '10.0.0.1/33' }), 'address'],
    ['v6 prefix', () => addAddress(sock, { link: 1, address: 'fd00::1/129' }), 'address'],
    ['nodad on v4', () => addAddress(sock, { link: 1, address: '10.0.0.1/8', nodad: true }), 'nodad'],
    ['link index 0', () => addAddress(sock, { link: 0, address: '10.0.0.1/8' }), 'link'],
    ['gateway family', () => addRoute(sock, { dst: '10.0.0.0/8', gateway: 'fe80::1' }), 'gateway'],
    ['no nexthop', () => addRoute(sock, { dst: '10.0.0.0/8' }), 'dev'],
    ['table 0', () => addRoute(sock, { dst: '10.0.0.0/8', gateway: '10.0.0.1', table: 0 }), 'table'],
    ['route mtu', () => addRoute(sock, { dst: '10.0.0.0/8', gateway: '10.0.0.1', mtu: 1e6 }), 'mtu'],
    ['route type', () => addRoute(sock, { dst: '10.0.0.0/8', type: 'bogus' as 'local' }), 'type'],
    ['fwmask alone', () => addRule(sock, { fwmask: 0xff, table: 1 }), 'fwmask'],
    ['fwmark range', () => addRule(sock, { fwmark: 2 ** 32, table: 1 }), 'fwmark'],
    ['rule family', () => addRule(sock, { family: 5 as 4, table: 1 }), 'family'],
    ['rule src family', () => addRule(sock, { src: 'fd00::/8', table: 1 }), 'src'],
    ['rule iif', () => addRule(sock, { iif: 'x'.repeat(16), table: 1 }), 'iif'],
  ];
  for (const [what, run, field] of bad) {
    it(what, async () => {
      const err = await run().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(NetlinkValidationError);
      expect((err as NetlinkValidationError).field).toBe(field);
    });
  }
  it('sent nothing for any of them', () => {
    expect(sent).toHaveLength(0);
  });
  it('sysctl keys', () => {
    expect(sysctlPath('net.ipv4.ip_forward')).toBe('/proc/sys/net/ipv4/ip_forward');
    expect(sysctlPath('net/ipv4/conf/eth0.100/rp_filter')).toBe('/proc/sys/net/ipv4/conf/eth0.100/rp_filter');
    expect(() => sysctlPath('net/../../etc/passwd')).toThrow(NetlinkValidationError);
    expect(() => writeSysctl('net.ipv4.ip_forward', '1\n2')).toThrow(/value/);
  });
});

describe('rtnetlink decoders on random bytes', () => {
  it('only ever throw NetlinkDecodeError', () => {
    const decoders = [decodeLink, decodeAddress, decodeRoute, decodeRule];
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), fc.integer({ min: 0, max: 3 }), (arr, which) => {
        const msg = { length: 16 + arr.length, type: 16, flags: 0, seq: 0, pid: 0, payload: Buffer.from(arr) };
        try {
          decoders[which]!(msg);
        } catch (e) {
          if (!(e instanceof NetlinkDecodeError)) throw e;
        }
      }),
      { numRuns: 4000 },
    );
  });

  it('decode random but well-formed attribute payloads too', () => {
    const attrArb = fc.record({ type: fc.integer({ min: 0, max: 60 }), data: fc.uint8Array({ maxLength: 20 }) });
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.array(attrArb, { maxLength: 8 }),
        fc.integer({ min: 0, max: 3 }),
        fc.constantFrom(2, 10, -1),
        (hdr, attrs, which, af) => {
          const header = Buffer.from(hdr);
          // Usually a valid family (AF_INET/AF_INET6) so decoders get past the header check.
          if (af > 0) header[0] = af;
          const payload = Buffer.concat([
            header.subarray(0, [16, 8, 12, 12][which]),
            ...attrs.map((a) => attr.binary(a.type, a.data)),
          ]);
          const msg = { length: 16 + payload.length, type: 16, flags: 0, seq: 0, pid: 0, payload };
          try {
            [decodeLink, decodeAddress, decodeRoute, decodeRule][which]!(msg);
          } catch (e) {
            if (!(e instanceof NetlinkDecodeError)) throw e;
          }
        },
      ),
      { numRuns: 4000 },
    );
  });
});

describe('IP parsing/formatting', () => {
  it('parses and formats', () => {
    expect(parsePrefix('10.1.2.3/8', 'x')).toMatchObject({ family: 4, prefixLen: 8 });
    expect(parsePrefix('fd00::1', 'x').prefixLen).toBe(128);
    expect(parseIp('::ffff:1.2.3.4', 'x').bytes.toString('hex')).toBe('00000000000000000000ffff01020304');
    expect(formatIp(parseIp('2001:db8:0:0:1:0:0:1', 'x').bytes)).toBe('2001:db8::1:0:0:1');
    expect(formatIp(parseIp('::', 'x').bytes)).toBe('::');
    expect(formatIp(parseIp('fe80::', 'x').bytes)).toBe('fe80::');
    expect(() => parseIp('fe80::1%eth0', 'gw')).toThrow(/gw/);
  });
  it('IPv6 text -> bytes -> text is stable (fast-check)', () => {
    fc.assert(
      fc.property(fc.ipV6(), (text) => {
        const a = parseIp(text, 'x');
        expect(parseIp(formatIp(a.bytes), 'x').bytes).toEqual(a.bytes);
      }),
      { numRuns: 1000 },
    );
  });
  it('IPv4 round-trips (fast-check)', () => {
    fc.assert(
      fc.property(fc.ipV4(), (text) => {
        expect(formatIp(parseIp(text, 'x').bytes)).toBe(text);
      }),
    );
  });
});
