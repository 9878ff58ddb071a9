import { existsSync, mkdtempSync, readFileSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describePrivileged } from '@veil/test-utils';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  ArgumentError,
  BpfError,
  BpfMap,
  CodecSizeError,
  ObjectSpec,
  Program,
  bytes,
  mountBpffs,
  unmountBpffs,
  u32,
  u64,
} from '../src/index.js';
import { fixture, ipv4Packet, lpmV4, v4 } from './helpers.js';

function mountedBpffs(dir: string): boolean {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .some((l) => {
      const [, mnt, type] = l.split(' ');
      return mnt === dir && type === 'bpf';
    });
}

describePrivileged('pinning on a private bpffs', ['root', 'bpf'], () => {
  let dir = '';
  let mounted = false;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'lbts-bpffs-'));
    mountBpffs(dir);
    mounted = true;
  });
  afterAll(() => {
    if (mounted) unmountBpffs(dir);
    if (dir) rmdirSync(dir);
    expect(mountedBpffs(dir)).toBe(false);
  });

  it('mountBpffs mounted a bpf filesystem at the temp dir', () => {
    expect(mountedBpffs(dir)).toBe(true);
  });

  it('mount/unmount errors are BpfError', () => {
    expect(() => mountBpffs('/nonexistent/lbts')).toThrow(BpfError);
    const other = mkdtempSync(join(tmpdir(), 'lbts-nomount-'));
    try {
      expect(() => unmountBpffs(other)).toThrow(expect.objectContaining({ code: 'EINVAL', op: 'bpffs.unmount' }));
    } finally {
      rmdirSync(other);
    }
  });

  it('pin a map, reopen it with fromPin, size-checked; unpin', () => {
    const obj = ObjectSpec.open(fixture('maps')).load();
    const path = join(dir, 'routes');
    try {
      const m = obj.map('lpm_v4', lpmV4, u32);
      m.update(v4('10.5.0.0/16'), 77);
      m.pin(path);
      expect(existsSync(path)).toBe(true);
      expect(() => m.pin(path)).toThrow(expect.objectContaining({ code: 'EEXIST', op: 'map.pin' }));
    } finally {
      obj.close();
    }
    // the pin keeps the map alive after the object is closed
    const again = BpfMap.fromPin(path, lpmV4, u32);
    try {
      expect(again.lookup(v4('10.5.1.1'))).toBe(77);
      expect(again.info).toMatchObject({ name: 'lpm_v4', type: 'lpm_trie', keySize: 8, valueSize: 4 });
      const e = (() => {
        try {
          BpfMap.fromPin(path, bytes(4), u32);
        } catch (err) {
          return err;
        }
      })();
      expect(e).toBeInstanceOf(CodecSizeError);
      expect((e as Error).message).toBe(`pinned map '${path}' (lpm_v4): key codec is 4 bytes but the key is 8 bytes`);
      again.unpin(path);
      expect(existsSync(path)).toBe(false);
      // the open fd still works after unpin
      expect(again.lookup(v4('10.5.1.1'))).toBe(77);
    } finally {
      again.close();
      again.close();
    }
    expect(() => again.lookup(v4('10.5.1.1'))).toThrow(/is closed/);
    expect(() => BpfMap.fromPin(path, lpmV4, u32)).toThrow(expect.objectContaining({ code: 'ENOENT', op: 'map.fromPin' }));
  });

  it('pin a program, reopen it with Program.fromPin and run it; a program pin is not a map', () => {
    const obj = ObjectSpec.open(fixture('maps')).load();
    const path = join(dir, 'magic');
    obj.program('magic').pin(path);
    obj.close();
    const p = Program.fromPin(path);
    try {
      expect(p.type).toBe('sched_cls');
      expect(p.name).toBe('magic');
      expect(p.id).toBeGreaterThan(0);
      expect(p.run({ data: ipv4Packet('1.1.1.1') }).retval >>> 0).toBe(0x55667788);
      expect(() => BpfMap.fromPin(path, u32, u32)).toThrow(new ArgumentError('path', `'${path}' is a pinned program, not a map`));
      p.unpin(path);
    } finally {
      p.close();
    }
  });

  it('setPinPath: libbpf pins on load and reuses a compatible pinned map on the next load', () => {
    const path = join(dir, 'hash_map');
    const first = ObjectSpec.open(fixture('maps')).setPinPath('hash_map', path);
    expect(first.maps.get('hash_map')?.pinPath).toBe(path);
    const o1 = first.load();
    o1.map('hash_map', u32, u64).update(1, 111n);
    const id1 = o1.maps.get('hash_map')?.id;
    o1.close();
    expect(existsSync(path)).toBe(true);

    const o2 = ObjectSpec.open(fixture('maps')).setPinPath('hash_map', path).load();
    try {
      expect(o2.maps.get('hash_map')?.id).toBe(id1);
      expect(o2.map('hash_map', u32, u64).lookup(1)).toBe(111n);
    } finally {
      o2.close();
    }

    // an incompatible map at the pin path fails the load
    const bad = ObjectSpec.open(fixture('maps')).setPinPath('array_map', path);
    expect(() => bad.load()).toThrow(
      expect.objectContaining({
        name: 'BpfError',
        code: 'EINVAL',
        op: 'object.load',
        // eslint-disable-next-line @typescript-eslint/no-unsafe-assignment -- vitest's asymmetric matchers (expect.any, objectContaining) are typed any
        message: expect.stringContaining("couldn't reuse pinned map"),
      }),
    );
    const pinned = BpfMap.fromPin(path, u32, u64);
    pinned.unpin(path);
    pinned.close();
    expect(existsSync(path)).toBe(false);
  });
});
