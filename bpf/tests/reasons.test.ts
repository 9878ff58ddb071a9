import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describePrivileged } from '@veil/test-utils';
import { describe, expect, it } from 'vitest';
import { loadDatapath, REASON_COUNT, REASONS, reasonIndex } from '../src/index.js';
import { arpRequest, ethernet, udpPacket } from '../src/testing/index.js';

const header = readFileSync(fileURLToPath(new URL('../lib/reasons.h', import.meta.url)), 'utf8');

describe('reasons.h and reasons.ts agree', () => {
  // Lines look like:  VEIL_R_PASS_LOCAL = 0,   /* pass-local: ... */
  const entries = [...header.matchAll(/^\s*VEIL_R_([A-Z_]+)\s*=\s*(\d+),\s*\/\*\s*([a-z-]+):/gm)].map((m) => ({
    c: m[1] as string,
    n: Number(m[2]),
    ts: m[3] as string,
  }));

  it('has one TypeScript name per C enumerator, at the same number', () => {
    expect(entries.length).toBe(REASON_COUNT);
    for (const e of entries) {
      expect(REASONS[e.n], `VEIL_R_${e.c}`).toBe(e.ts);
      // The TypeScript name is the C name in kebab case.
      expect(e.ts).toBe(e.c.toLowerCase().replace(/_/g, '-'));
    }
  });

  it('VEIL_R_MAX equals the number of reasons', () => {
    const max = /VEIL_R_MAX\s*=\s*(\d+)/.exec(header);
    expect(Number(max?.[1])).toBe(REASON_COUNT);
  });
});

describePrivileged('reason numbering seen through the compiled object', ['root', 'bpf'], () => {
  it('the counter slot the program bumps is the one reasons.ts names', () => {
    const dp = loadDatapath({ trace: true });
    try {
      dp.fromPod.run({ data: arpRequest({ senderIp: '10.0.0.1', targetIp: '10.0.0.2' }) });
      dp.fromPod.run({ data: ethernet(udpPacket({ src: '10.0.0.1', dst: '8.8.8.8' })) });
      expect(dp.counters.lookupPerCpu(reasonIndex('pass-non-ip'))?.reduce((s, c) => s + c.packets, 0n)).toBe(1n);
      expect(dp.counters.lookupPerCpu(reasonIndex('pass-unknown'))?.reduce((s, c) => s + c.packets, 0n)).toBe(1n);
      expect(dp.lastTrace()?.reason).toBe('pass-unknown');
      expect(dp.counters.maxEntries).toBe(REASON_COUNT);
    } finally {
      dp.close();
    }
  });
});
