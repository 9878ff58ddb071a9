import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  XfrmDecodeError,
  decodePolicyPayload,
  decodeSpdInfoPayload,
  decodeStatePayload,
  encodePolicyPayload,
  encodeStatePayload,
  nl,
  type XfrmPolicy,
  type XfrmState,
} from '../src/index.js';
import { normalizePolicy, normalizeState, policy, state } from './arbitraries.js';

describe('struct sizes match linux/xfrm.h on x86_64', () => {
  it.each([
    ['xfrm_address_t', nl.xfrmAddress.size, 16],
    ['xfrm_selector', nl.xfrmSelector.size, 56],
    ['xfrm_id', nl.xfrmId.size, 24],
    ['xfrm_lifetime_cfg', nl.xfrmLifetimeCfg.size, 64],
    ['xfrm_lifetime_cur', nl.xfrmLifetimeCur.size, 32],
    ['xfrm_stats', nl.xfrmStats.size, 12],
    ['xfrm_usersa_info', nl.xfrmUsersaInfo.size, 224],
    ['xfrm_usersa_id', nl.xfrmUsersaId.size, 24],
    ['xfrm_userpolicy_info', nl.xfrmUserpolicyInfo.size, 168],
    ['xfrm_userpolicy_id', nl.xfrmUserpolicyId.size, 64],
    ['xfrm_user_tmpl', nl.xfrmUserTmpl.size, 64],
    ['xfrm_mark', nl.xfrmMark.size, 8],
    ['xfrmu_spdinfo', nl.xfrmuSpdinfo.size, 24],
    ['xfrmu_spdhinfo', nl.xfrmuSpdhinfo.size, 8],
    ['xfrmu_spdhthresh', nl.xfrmuSpdhthresh.size, 2],
  ])('%s is %i bytes', (_name, size, want) => {
    expect(size).toBe(want);
  });

  it('variable-size algorithm and replay structs have the kernel header sizes', () => {
    expect(nl.encodeXfrmAlgo({ name: 'cbc(aes)', key: new Uint8Array(0), keyLenBits: 0 }).length).toBe(68);
    expect(nl.encodeXfrmAlgoAuth({ name: 'hmac(sha256)', key: new Uint8Array(0), keyLenBits: 0, truncLenBits: 0 }).length).toBe(
      72,
    );
    expect(nl.encodeXfrmAlgoAead({ name: 'x', key: new Uint8Array(0), keyLenBits: 0, icvLenBits: 0 }).length).toBe(72);
    expect(nl.encodeReplayStateEsn({ bmpLen: 0, oseq: 0, seq: 0, oseqHi: 0, seqHi: 0, replayWindow: 0, bmp: [] }).length).toBe(
      24,
    );
  });

  it('selector fields land at the kernel offsets (ports big-endian)', () => {
    const sel = nl.emptySelector();
    sel.dport = 0x1234;
    sel.family = 10;
    sel.prefixlenD = 0x40;
    sel.proto = 17;
    sel.ifindex = 7;
    const b = nl.encodeStruct(nl.xfrmSelector, sel);
    expect([b[32], b[33]]).toEqual([0x12, 0x34]);
    expect(b[40]).toBe(10);
    expect(b[42]).toBe(0x40);
    expect(b[44]).toBe(17);
    expect(b[48]).toBe(7);
  });
});

function stripRead<T extends { current?: unknown; stats?: unknown; replay?: unknown }>(x: T): T {
  const c = { ...x };
  delete c.current;
  delete c.stats;
  delete c.replay;
  return c;
}

describe('encode -> decode round trips (fast-check)', () => {
  it('random valid states survive', () => {
    fc.assert(
      fc.property(state, (s: XfrmState) => {
        const decoded = stripRead(decodeStatePayload(encodeStatePayload(s)));
        expect(decoded).toEqual(normalizeState(s));
      }),
      { numRuns: 400 },
    );
  });

  it('random valid policies survive', () => {
    fc.assert(
      fc.property(policy, (p: XfrmPolicy) => {
        const decoded = stripRead(decodePolicyPayload(encodePolicyPayload(p)));
        expect(decoded).toEqual(normalizePolicy(p));
      }),
      { numRuns: 400 },
    );
  });

  it('every wire struct codec round-trips random bytes of its size', () => {
    const codecs: nl.StructCodec<unknown>[] = [
      nl.xfrmSelector,
      nl.xfrmId,
      nl.xfrmLifetimeCfg,
      nl.xfrmLifetimeCur,
      nl.xfrmStats,
      nl.xfrmUsersaInfo,
      nl.xfrmUsersaId,
      nl.xfrmUserpolicyInfo,
      nl.xfrmUserpolicyId,
      nl.xfrmUserTmpl,
      nl.xfrmMark,
      nl.xfrmuSpdinfo,
      nl.xfrmuSpdhinfo,
      nl.xfrmuSpdhthresh,
    ] as nl.StructCodec<unknown>[];
    for (const codec of codecs) {
      fc.assert(
        fc.property(fc.uint8Array({ minLength: codec.size, maxLength: codec.size }), (raw) => {
          const value = nl.decodeStruct(codec, raw);
          const again = nl.decodeStruct(codec, nl.encodeStruct(codec, value));
          expect(again).toEqual(value);
        }),
        { numRuns: 50 },
      );
    }
  });
});

function onlyTypedErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    // Decoders may only fail with XfrmDecodeError; anything else is a crash.
    if (!(e instanceof XfrmDecodeError)) throw e;
  }
}

describe('decoders on hostile input', () => {
  it('random bytes never crash the state, policy or SPD decoders', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (raw) => {
        const b = Buffer.from(raw);
        onlyTypedErrors(() => decodeStatePayload(b));
        onlyTypedErrors(() => decodePolicyPayload(b));
        onlyTypedErrors(() => decodeSpdInfoPayload(b));
      }),
      { numRuns: 2000 },
    );
  });

  it('mutated valid messages never crash the decoders', () => {
    fc.assert(
      fc.property(
        state,
        policy,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
        fc.nat(),
        (s, p, flips, cut) => {
          for (const enc of [encodeStatePayload(s), encodePolicyPayload(p)]) {
            const b = Buffer.from(enc);
            for (const [at, v] of flips) b[at % b.length] = v;
            const truncated = b.subarray(0, cut % (b.length + 1));
            onlyTypedErrors(() => decodeStatePayload(b));
            onlyTypedErrors(() => decodePolicyPayload(b));
            onlyTypedErrors(() => decodeStatePayload(truncated));
            onlyTypedErrors(() => decodePolicyPayload(truncated));
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('a short struct names what it was decoding', () => {
    expect(() => decodeStatePayload(Buffer.alloc(100))).toThrow(/xfrm_usersa_info: need 224 bytes, got 100/);
    expect(() => decodePolicyPayload(Buffer.alloc(10))).toThrow(XfrmDecodeError);
  });

  it('an algorithm whose key length overruns its attribute is a decode error', () => {
    const good = encodeStatePayload({
      src: '10.0.0.1',
      dst: '10.0.0.2',
      spi: 1,
      mode: 'tunnel',
      aead: { name: 'rfc4106(gcm(aes))', key: new Uint8Array(20), icvLen: 128 },
    });
    const bad = Buffer.from(good);
    // alg_key_len lives 64 bytes into the attribute payload (224 struct + 4 attr header).
    bad.writeUInt32LE(4000, 224 + 4 + 64);
    expect(() => decodeStatePayload(bad)).toThrow(/xfrm_algo_aead: key of 4000 bits/);
  });
});
