import { canonicalCidr, formatIPv6 } from '@veil/ip';
import fc from 'fast-check';
import type { XfrmPolicy, XfrmSelector, XfrmState, XfrmTemplate } from '../src/index.js';

// Generators of VALID inputs plus the normalisation decode is expected to produce (defaults
// filled in, "not set" spelled as undefined).

const octet = fc.integer({ min: 0, max: 255 });
export const ipv4 = fc.tuple(octet, octet, octet, octet).map((o) => o.join('.'));
// Non-zero leading group keeps the text form unambiguous after compression.
export const ipv6 = fc
  .array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 })
  .map((g) => {
    g[0] = (g[0]! % 0xfeff) + 1;
    return g;
  })
  .map((g) => canonical6(g));

/** RFC 5952 text of eight 16-bit groups (@veil/ip formats; decode must give this text back). */
function canonical6(groups: number[]): string {
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(g, i * 2));
  return formatIPv6(b);
}

const cidr4 = fc.tuple(ipv4, fc.integer({ min: 0, max: 32 })).map(([a, l]) => canonicalCidr(`${a}/${l}`));
const cidr6 = fc
  .tuple(fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }), fc.integer({ min: 0, max: 128 }))
  .map(([g, l]) => canonicalCidr(`${canonical6(g)}/${l}`));

const port = fc.integer({ min: 1, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });

function selectorOf(src: fc.Arbitrary<string>, dst: fc.Arbitrary<string>): fc.Arbitrary<XfrmSelector> {
  return fc
    .record(
      {
        src,
        dst,
        proto: fc.constantFrom(6, 17, 132),
        srcPort: port,
        dstPort: port,
        ifindex: fc.integer({ min: 1, max: 0x7fffffff }),
      },
      { requiredKeys: ['src', 'dst'] },
    )
    .map((s) => {
      // Ports need a protocol.
      if (s.proto === undefined) {
        delete s.srcPort;
        delete s.dstPort;
      }
      return s;
    });
}

export const selector: fc.Arbitrary<{ family: 4 | 6; sel: XfrmSelector }> = fc.oneof(
  selectorOf(cidr4, cidr4).map((sel) => ({ family: 4 as const, sel })),
  selectorOf(cidr6, cidr6).map((sel) => ({ family: 6 as const, sel })),
);

const mark = fc.tuple(u32, fc.integer({ min: 1, max: 0xffffffff })).map(([v, m]) => ({ value: (v & m) >>> 0, mask: m }));

const limits = fc.record(
  {
    softBytes: fc.bigInt({ min: 0n, max: 2n ** 63n }),
    hardBytes: fc.bigInt({ min: 0n, max: 2n ** 63n }),
    softPackets: fc.bigInt({ min: 0n, max: 2n ** 63n }),
    hardPackets: fc.bigInt({ min: 0n, max: 2n ** 63n }),
    softAddExpiresSeconds: fc.integer({ min: 1, max: 1e9 }),
    hardAddExpiresSeconds: fc.integer({ min: 1, max: 1e9 }),
    softUseExpiresSeconds: fc.integer({ min: 1, max: 1e9 }),
    hardUseExpiresSeconds: fc.integer({ min: 1, max: 1e9 }),
  },
  { requiredKeys: [] },
);

const bytes = (n: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: n, maxLength: n });

const transforms = fc.oneof(
  fc.record({
    aead: fc.oneof(
      fc.record({
        name: fc.constant('rfc4106(gcm(aes))' as const),
        key: fc.constantFrom(20, 28, 36).chain(bytes),
        icvLen: fc.constantFrom(64, 96, 128),
      }),
      fc.record({ name: fc.constant('rfc7539esp(chacha20,poly1305)' as const), key: bytes(36), icvLen: fc.constant(128) }),
    ),
  }),
  fc.record({
    auth: fc.record({ name: fc.constant('hmac(sha256)' as const), key: bytes(32), truncLen: fc.constantFrom(96, 128, 256) }),
    crypt: fc.record({ name: fc.constant('cbc(aes)' as const), key: fc.constantFrom(16, 24, 32).chain(bytes) }),
  }),
);

export const state: fc.Arbitrary<XfrmState> = fc
  .tuple(
    fc.oneof(fc.tuple(ipv4, ipv4), fc.tuple(ipv6, ipv6)),
    fc.integer({ min: 1, max: 0xffffffff }),
    u32,
    fc.constantFrom('tunnel' as const, 'transport' as const),
    transforms,
    fc.record(
      {
        esn: fc.boolean(),
        replayWindow: fc.integer({ min: 1, max: 4096 }),
        mark,
        outputMark: mark,
        ifId: fc.integer({ min: 1, max: 0xffffffff }),
        limits,
      },
      { requiredKeys: [] },
    ),
  )
  .map(([[src, dst], spi, reqid, mode, tf, extra]) => {
    const s: XfrmState = { src, dst, spi, reqid, mode, ...tf, ...extra };
    if (s.esn && !s.replayWindow) s.replayWindow = 32;
    return s;
  });

/** What decode(encode(s)) must return for a generated state. */
export function normalizeState(s: XfrmState): XfrmState {
  const n: XfrmState = {
    ...s,
    proto: s.proto ?? 'esp',
    reqid: s.reqid ?? 0,
    esn: s.esn ?? false,
    replayWindow: s.replayWindow ?? 0,
  };
  if (n.auth) n.auth = { ...n.auth, truncLen: n.auth.truncLen ?? 128 };
  if (n.mark) n.mark = { value: n.mark.value, mask: n.mark.mask ?? 0xffffffff };
  if (n.outputMark) n.outputMark = { value: n.outputMark.value, mask: n.outputMark.mask ?? 0xffffffff };
  if (n.limits && Object.keys(n.limits).length === 0) delete n.limits;
  return n;
}

function templateFor(family: 4 | 6, outer: 4 | 6): fc.Arbitrary<XfrmTemplate> {
  const addr = outer === 4 ? ipv4 : ipv6;
  return fc.oneof(
    fc.record(
      {
        src: addr,
        dst: addr,
        proto: fc.constantFrom('esp' as const, 'ah' as const),
        spi: fc.integer({ min: 1, max: 0xffffffff }),
        mode: fc.constant('tunnel' as const),
        reqid: u32,
      },
      { requiredKeys: ['src', 'dst', 'mode'] },
    ),
    // Transport templates keep the selector's family.
    fc
      .record(
        {
          proto: fc.constantFrom('esp' as const, 'ah' as const),
          spi: fc.integer({ min: 1, max: 0xffffffff }),
          mode: fc.constant('transport' as const),
          reqid: u32,
          optional: fc.constant(true),
        },
        { requiredKeys: ['mode'] },
      )
      .filter(() => family === outer),
  );
}

export const policy: fc.Arbitrary<XfrmPolicy> = selector.chain(({ family, sel }) =>
  fc
    .record(
      {
        dir: fc.constantFrom('in' as const, 'out' as const, 'fwd' as const),
        priority: u32,
        mark,
        ifId: fc.integer({ min: 1, max: 0xffffffff }),
        limits,
        index: fc.integer({ min: 1, max: 0xffffffff }),
        templates: fc.array(templateFor(family, family), { maxLength: 3 }),
      },
      { requiredKeys: ['dir'] },
    )
    .map((p) => ({ selector: sel, ...p })),
);

export function normalizePolicy(p: XfrmPolicy): XfrmPolicy {
  const n: XfrmPolicy = { ...p, priority: p.priority ?? 0, action: p.action ?? 'allow', index: p.index ?? 0 };
  if (n.mark) n.mark = { value: n.mark.value, mask: n.mark.mask ?? 0xffffffff };
  if (n.templates?.length === 0) delete n.templates;
  if (n.templates) n.templates = n.templates.map((t) => ({ ...t, proto: t.proto ?? 'esp', reqid: t.reqid ?? 0 }));
  if (n.limits && Object.keys(n.limits).length === 0) delete n.limits;
  return n;
}
