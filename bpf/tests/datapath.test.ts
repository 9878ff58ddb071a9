import { describePrivileged } from '@veil/test-utils';
import { ArgumentError, BpfError, ObjectSpec } from 'libbpf-ts';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, loadDatapath, objectPath, PROGRAMS, REASON_COUNT, TcAction, traceObjectPath } from '../src/index.js';
import { ethernet, udpPacket } from '../src/testing/index.js';

describe('loadDatapath argument checks (before any kernel call)', () => {
  it('rejects bad map sizes and config, naming the field', () => {
    expect(() => loadDatapath({ ipcacheMaxEntries: 0 })).toThrow(ArgumentError);
    expect(() => loadDatapath({ ipcacheMaxEntries: 1.5 })).toThrow(/ipcacheMaxEntries/);
    expect(() => loadDatapath({ strictCidrsMaxEntries: -1 })).toThrow(/strictCidrsMaxEntries/);
    expect(() => loadDatapath({ config: { mtu: 20 } })).toThrow(/config\.mtu/);
    expect(() => loadDatapath({ config: { backend: 'tls' as never } })).toThrow(/config\.backend/);
  });

  it('resolves absolute object paths', () => {
    expect(objectPath()).toMatch(/^\/.*\/bpf\/obj\/veil\.bpf\.o$/);
    expect(traceObjectPath()).toMatch(/\/obj\/veil_trace\.bpf\.o$/);
  });
});

describePrivileged('loadDatapath', ['root', 'bpf'], () => {
  it('production object: three programs, shared maps, no trace map', () => {
    const spec = ObjectSpec.open(objectPath());
    try {
      expect([...spec.maps.keys()].sort()).toEqual(['config', 'counters', 'ipcache', 'strict_cidrs']);
      expect([...spec.programs.keys()].sort()).toEqual(Object.values(PROGRAMS).sort());
      for (const p of spec.programs.values()) expect(p.type).toBe('sched_cls');
    } finally {
      spec.close();
    }
    const dp = loadDatapath({
      ipcacheMaxEntries: 4096,
      strictCidrsMaxEntries: 16,
      config: { backend: 'wireguard', wgIfindex: 5 },
    });
    try {
      expect(dp.ipcache.maxEntries).toBe(4096);
      expect(dp.strictCidrs.maxEntries).toBe(16);
      expect(dp.counters.maxEntries).toBe(REASON_COUNT);
      expect(dp.traceMap).toBeUndefined();
      expect(() => dp.lastTrace()).toThrow(ArgumentError);
      expect(dp.getConfig()).toEqual({ ...DEFAULT_CONFIG, backend: 'wireguard', wgIfindex: 5 });
      dp.ipcache.update('10.2.0.0/24', { remote: true, encryptReady: true, nodeIp: '192.168.0.2', nodeId: 2 });
      const r = dp.fromPod.run({ data: ethernet(udpPacket({ src: '10.1.0.1', dst: '10.2.0.9' })) });
      expect(r.retval).toBe(TcAction.REDIRECT);
      expect(dp.readCounters()['redirect-wireguard'].packets).toBe(1n);
      dp.resetCounters();
      expect(dp.readCounters()['redirect-wireguard'].packets).toBe(0n);
      expect([...dp.ipcache.keys()].map((k) => `${k.addr}/${k.prefixLen}`)).toEqual(['10.2.0.0/24']);
      expect(dp.removeStrictCidr('10.0.0.0/8')).toBe(false);
      dp.addStrictCidr('10.0.0.0/8');
      expect(dp.removeStrictCidr('10.0.0.0/8')).toBe(true);
    } finally {
      dp.close();
    }
  });

  it('a missing object file is a BpfError, not a crash', () => {
    expect(() => loadDatapath({ path: '/nonexistent/veil.bpf.o' })).toThrow(BpfError);
  });
});
