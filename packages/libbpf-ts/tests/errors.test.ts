import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describePrivileged } from '@veil/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ArgumentError,
  BpfError,
  BpfObject,
  ClosedError,
  CodecSizeError,
  LibbpfError,
  NotFoundError,
  NotSupportedError,
  ObjectSpec,
  Program,
  SkBuff,
  attachTc,
  bytes,
  errnoCode,
  ifNameToIndex,
  listTc,
  numPossibleCpus,
  queryTc,
  u16,
  u32,
  u64,
  u8,
} from '../src/index.js';
import { native } from '../src/native.js';
import { fixture, ipv4Packet, lpmV4, v4 } from './helpers.js';

describe('errors without privileges', () => {
  it('errnoCode names kernel and libbpf errnos', () => {
    expect(errnoCode(1)).toBe('EPERM');
    expect(errnoCode(-2)).toBe('ENOENT');
    expect(errnoCode(524)).toBe('ENOTSUPP');
    expect(errnoCode(4007)).toBe('LIBBPF_ERRNO__VERIFY');
    expect(errnoCode(99999)).toBe('E99999');
  });

  it('ObjectSpec.open: missing file → BpfError ENOENT, not an ELF → BpfError, bad path → ArgumentError', () => {
    const err = captureError(() => ObjectSpec.open('/nonexistent/x.bpf.o'));
    expect(err).toBeInstanceOf(BpfError);
    expect(err).toMatchObject({ code: 'ENOENT', errno: 2, op: 'object.open', context: "'/nonexistent/x.bpf.o'" });
    const dir = mkdtempSync(join(tmpdir(), 'lbts-'));
    try {
      const junk = join(dir, 'junk.o');
      writeFileSync(junk, 'not an elf file at all');
      const e2 = captureError(() => ObjectSpec.open(junk));
      expect(e2).toBeInstanceOf(BpfError);
      expect(e2).toMatchObject({ op: 'object.open', code: 'LIBBPF_ERRNO__FORMAT' });
      expect((e2 as Error).message).toContain('is not a proper ELF object');
    } finally {
      rmSync(dir, { recursive: true });
    }
    expect(() => ObjectSpec.open(42 as unknown as string)).toThrow(
      new ArgumentError('path', 'must be a non-empty string, got number'),
    );
    expect(() => ObjectSpec.open('')).toThrow(ArgumentError);
  });

  it('spec: unknown names → NotFoundError listing the known ones', () => {
    const spec = ObjectSpec.open(fixture('maps'));
    try {
      const e = captureError(() => spec.setMaxEntries('nope', 10));
      expect(e).toBeInstanceOf(NotFoundError);
      expect(e).toMatchObject({ kind: 'map', wanted: 'nope' });
      expect((e as NotFoundError).known).toEqual(expect.arrayContaining(['hash_map', 'lpm_v4', 'pcpu_counters']));
      expect((e as Error).message).toMatch(/^no map named 'nope' in '.*maps\.bpf\.o'; known: .*hash_map/);
      const c = captureError(() => spec.setConstant('cfg_nope', 1));
      expect(c).toBeInstanceOf(NotFoundError);
      expect((c as Error).message).toContain('known: cfg_mark_base, cfg_drop_unknown, cfg_magic');
    } finally {
      spec.close();
    }
  });

  it('spec: constants are size-checked', () => {
    const spec = ObjectSpec.open(fixture('maps'));
    try {
      expect(spec.constants.get('cfg_mark_base')).toEqual({ name: 'cfg_mark_base', offset: 0, size: 4 });
      expect(spec.constants.get('cfg_magic')?.size).toBe(8);
      expect(() => spec.setConstant('cfg_drop_unknown', 256)).toThrow(
        new ArgumentError('cfg_drop_unknown', '256 does not fit in 1 byte(s)'),
      );
      expect(() => spec.setConstant('cfg_mark_base', Buffer.alloc(2))).toThrow(
        new CodecSizeError("constant 'cfg_mark_base'", 'constant', 2, 4),
      );
      expect(() => spec.setConstant('cfg_mark_base', u16, 1)).toThrow(
        "constant 'cfg_mark_base': constant codec is 2 bytes but the constant is 4 bytes",
      );
      expect(() => spec.setConstant('cfg_mark_base', 'x' as unknown as number)).toThrow(ArgumentError);
      expect(() => spec.setConstant('cfg_mark_base', u32, -1)).toThrow(/^cfg_mark_base: u32 needs/);
      spec.setConstant('cfg_magic', u64, 0xdeadbeefn).setConstant('cfg_mark_base', -1).setConstant('cfg_drop_unknown', true);
      expect(spec.getConstant('cfg_magic').readBigUInt64LE(0)).toBe(0xdeadbeefn);
      expect(spec.getConstant('cfg_mark_base').readUInt32LE(0)).toBe(0xffffffff);
      expect(spec.getConstant('cfg_drop_unknown')[0]).toBe(1);
      expect(() => spec.setMaxEntries('hash_map', 0)).toThrow(new ArgumentError('maxEntries', 'must be an integer ≥ 1, got 0'));
    } finally {
      spec.close();
    }
  });

  it('spec: every op after close() → ClosedError; close is idempotent', () => {
    const spec = ObjectSpec.open(fixture('maps'));
    spec.close();
    spec.close();
    for (const op of [
      () => spec.load(),
      () => spec.setConstant('cfg_mark_base', 1),
      () => spec.setMaxEntries('hash_map', 2),
      () => spec.setPinPath('hash_map', '/x'),
    ]) {
      const e = captureError(op);
      expect(e).toBeInstanceOf(ClosedError);
      expect((e as Error).message).toMatch(/^object spec '.*maps\.bpf\.o' is closed$/);
    }
  });

  it('the raw binding throws TypeError on wrong argument types instead of crashing', () => {
    expect(() => native.mapLookup('x' as unknown as number, Buffer.alloc(4), Buffer.alloc(4))).toThrow(TypeError);
    expect(() => native.mapLookup(0, 'k' as unknown as Buffer, Buffer.alloc(4))).toThrow('argument 1 must be a Buffer');
    expect(() => native.objInfo({} as never)).toThrow('argument 0 must be an object handle');
    expect(() => native.objOpen(undefined as unknown as string)).toThrow('argument 0 must be a string');
  });

  it('pins, interfaces and tc arguments are validated', () => {
    expect(captureError(() => Program.fromPin('/nonexistent/pin'))).toMatchObject({
      name: 'BpfError',
      code: 'ENOENT',
      op: 'program.fromPin',
    });
    const nf = captureError(() => ifNameToIndex('lbtsnope0'));
    expect(nf).toBeInstanceOf(NotFoundError);
    expect((nf as Error).message).toBe("no interface named 'lbtsnope0' in the current netns");
    expect(ifNameToIndex('lo')).toBe(1);
    expect(() => ifNameToIndex('x'.repeat(16))).toThrow(ArgumentError);
    expect(() => ifNameToIndex('lo', '/nonexistent/netns')).toThrow(/ifNameToIndex netns '\/nonexistent\/netns': ENOENT/);
    expect(() => attachTc({ ifindex: 0, direction: 'ingress', program: {} as Program })).toThrow(
      'ifindex: must be a positive integer, got 0',
    );
    expect(() => attachTc({ ifindex: 1, direction: 'up' as 'ingress', program: {} as Program })).toThrow(/^direction:/);
    expect(() => attachTc({ ifindex: 1, direction: 'egress', program: {} as Program })).toThrow('program: must be a Program');
    expect(() => queryTc({ ifindex: 1, direction: 'egress', priority: 70000, handle: 1 })).toThrow(
      /^priority: must be an integer in \[1, 65535\]/,
    );
    expect(() => listTc({ ifindex: -3, direction: 'egress' })).toThrow('ifindex: must be a positive integer, got -3');
    expect(() => listTc({ ifindex: 1, direction: 'egress', netns: '' })).toThrow('netns: must be a path like /run/netns/<name>');
  });

  it('numPossibleCpus', () => {
    expect(numPossibleCpus()).toBeGreaterThanOrEqual(1);
  });

  it('every error class extends LibbpfError', () => {
    for (const e of [
      new BpfError('x', 1, 'y'),
      new NotSupportedError('x', 524, 'y'),
      new ClosedError('x'),
      new NotFoundError('map', 'a', []),
      new CodecSizeError('m', 'key', 1, 2),
      new ArgumentError('f', 'm'),
    ]) {
      expect(e).toBeInstanceOf(LibbpfError);
      expect(e).toBeInstanceOf(Error);
    }
    expect(new NotSupportedError('map.updateBatch', 524, "map 'x'")).toBeInstanceOf(BpfError);
  });
});

describePrivileged('errors on live objects', ['root', 'bpf'], () => {
  let obj: BpfObject;
  beforeAll(() => {
    obj = ObjectSpec.open(fixture('maps')).load();
  });
  afterAll(() => obj?.close());

  it('wrong codec sizes → CodecSizeError naming the map and both sizes', () => {
    const e = captureError(() => obj.map('lpm_v4', u32, u32));
    expect(e).toBeInstanceOf(CodecSizeError);
    expect(e).toMatchObject({ target: "map 'lpm_v4'", role: 'key', codecSize: 4, expectedSize: 8 });
    expect((e as Error).message).toBe("map 'lpm_v4': key codec is 4 bytes but the key is 8 bytes");
    expect(() => obj.map('hash_map', u32, u32)).toThrow("map 'hash_map': value codec is 4 bytes but the value is 8 bytes");
    expect(() => obj.map('hash_map', u32, {} as never)).toThrow(ArgumentError);
  });

  it('unknown map / program → NotFoundError listing the known ones', () => {
    const e = captureError(() => obj.map('routes', lpmV4, u32));
    expect(e).toBeInstanceOf(NotFoundError);
    expect((e as NotFoundError).known).toEqual(
      expect.arrayContaining(['hash_map', 'array_map', 'lpm_v4', 'lpm_v6', 'pcpu_hash', 'pcpu_counters', 'maps.rodata']),
    );
    const p = captureError(() => obj.program('nope'));
    expect((p as Error).message).toMatch(/^no program named 'nope' in '.*'; known: classify, magic, ctx_echo$/);
  });

  it('bad keys/values/flags → ArgumentError naming the field, before any syscall', () => {
    const lpm = obj.map('lpm_v4', lpmV4, u32);
    expect(() => lpm.update({ prefixLen: 40, data: v4('10.0.0.0').data }, 1)).toThrow(
      'key.prefixLen: must be an integer in [0, 32], got 40',
    );
    expect(() => lpm.update(v4('10.0.0.0/8'), -1)).toThrow(/^value: u32 needs an integer/);
    expect(() => lpm.update(v4('10.0.0.0/8'), 1, 'always' as 'any')).toThrow(
      "flags: must be 'any', 'noexist' or 'exist', got always",
    );
    expect(() => lpm.lookup(7 as never)).toThrow(ArgumentError);
    expect(() => lpm.updateBatch([[v4('10.0.0.0/8'), 1]], 'noexist')).toThrow(/^flags: BPF_MAP_UPDATE_BATCH only supports 'any'/);
    expect(() =>
      lpm.updateBatch([
        [v4('10.0.0.0/8'), 1],
        [{ prefixLen: 8, data: 'x' as never }, 2],
      ]),
    ).toThrow('entries[1].key.data: bytes(4) needs a Buffer, got string');
    const pc = obj.map('pcpu_counters', u32, u64);
    expect(() => pc.lookup(0)).toThrow("map: map 'pcpu_counters' is per-CPU (percpu_array): use lookupPerCpu()");
    expect(() => pc.updatePerCpu(0, [1n])).toThrow(
      `values: needs exactly ${numPossibleCpus()} values (one per possible CPU), got 1`,
    );
    expect(() => lpm.lookupPerCpu(v4('10.0.0.1'))).toThrow(/is not per-CPU/);
    const prog = obj.program('classify');
    expect(() => prog.run({ data: 'abc' as unknown as Buffer })).toThrow('data: must be a Buffer, got string');
    expect(() => prog.run({ data: ipv4Packet('10.0.0.1'), repeat: 0 })).toThrow('repeat: must be an integer ≥ 1, got 0');
    expect(() => prog.run(undefined as never)).toThrow(ArgumentError);
  });

  it('kernel errors are BpfError with errno code and op', () => {
    const h = obj.map('hash_map', u32, u64);
    h.update(1, 1n);
    const e = captureError(() => h.update(1, 2n, 'noexist'));
    expect(e).toMatchObject({ name: 'BpfError', code: 'EEXIST', op: 'map.update', context: "map 'hash_map'" });
    expect(captureError(() => h.update(99, 2n, 'exist'))).toMatchObject({ code: 'ENOENT' });
    const arr = obj.map('array_map', u32, bytes(12));
    expect(captureError(() => arr.update(16, Buffer.alloc(12)))).toMatchObject({ code: 'E2BIG' });
    expect(captureError(() => arr.delete(0))).toMatchObject({ code: 'EINVAL', op: 'map.delete' });
    // ctx_in with a field the kernel does not accept (len) → EINVAL
    const ctx = SkBuff.encode();
    ctx.writeUInt32LE(5, 0);
    expect(captureError(() => obj.program('ctx_echo').run({ data: ipv4Packet('10.0.0.1'), ctx }))).toMatchObject({
      code: 'EINVAL',
      op: 'program.run',
    });
    // packet out larger than the room given
    expect(captureError(() => obj.program('classify').run({ data: ipv4Packet('10.0.0.1'), dataOutSize: 10 }))).toMatchObject({
      code: 'ENOSPC',
    });
  });

  it('closed object → ClosedError from every handed-out map and program; close is idempotent', () => {
    const o = ObjectSpec.open(fixture('maps')).load();
    const m = o.map('hash_map', u32, u64);
    const p = o.program('magic');
    o.close();
    o.close();
    for (const op of [
      () => m.lookup(1),
      () => m.update(1, 1n),
      () => m.delete(1),
      () => [...m.keys()],
      () => m.fd,
      () => p.run({ data: ipv4Packet('10.0.0.1') }),
      () => p.fd,
      () => o.map('hash_map', u32, u64),
      () => o.program('magic'),
    ]) {
      expect(op).toThrow(ClosedError);
    }
    expect(captureError(() => m.lookup(1))).toMatchObject({ what: "map 'hash_map'", message: "map 'hash_map' is closed" });
    expect(m.closed).toBe(true);
  });

  it('a map view can be closed alone; the object stays usable', () => {
    const m = obj.map('hash_map', u32, u64);
    m.close();
    expect(() => m.lookup(1)).toThrow(ClosedError);
    expect(obj.map('hash_map', u32, u64).lookup(1)).toBe(1n);
  });

  it('a spec is single-use: load() consumes it', () => {
    const spec = ObjectSpec.open(fixture('maps'));
    const o = spec.load();
    try {
      expect(() => spec.load()).toThrow(ClosedError);
      expect(() => spec.setConstant('cfg_mark_base', 1)).toThrow(ClosedError);
    } finally {
      o.close();
    }
  });

  it('u8 codec sized maps', () => {
    expect(() => obj.map('hash_map', u8, u64)).toThrow(CodecSizeError);
  });
});

function captureError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
}
