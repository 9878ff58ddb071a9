import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { inCI } from '../src/capabilities.js';
import { goBenchBinary, parseGoBenchOutput } from '../src/go-bench.js';

const goDir = fileURLToPath(new URL('../../go-bench/', import.meta.url));
const hasGo = spawnSync('go', ['version']).status === 0;

describe('veil-gobench (the Go side of the library benchmarks)', () => {
  it('parses the last line of the harness output as its result and rejects output without one', () => {
    expect(
      parseGoBenchOutput('warming up\n{"tool":"cilium/ebpf","op":"lpm-update","ms":12.5,"count":100000,"mode":"batch"}\n'),
    ).toEqual({
      tool: 'cilium/ebpf',
      op: 'lpm-update',
      ms: 12.5,
      count: 100000,
      mode: 'batch',
    });
    expect(() => parseGoBenchOutput('panic: oops\n')).toThrow(/no JSON result/);
    expect(() => parseGoBenchOutput('{"tool":"x","op":"y"}')).toThrow(/lacks tool\/ms\/count/);
  });

  // The harness's own unit tests: argument parsing (each bad flag named) and the JSON/file decoders.
  it.skipIf(!hasGo && !inCI)(
    'passes go test (argument parsing and input decoding)',
    () => {
      const out = execFileSync('go', ['test', '-count=1', './...'], {
        cwd: goDir,
        encoding: 'utf8',
        env: { ...process.env, GOFLAGS: '-mod=readonly' },
      });
      expect(out).toMatch(/^ok\s+veil\.dev\/tools\/go-bench/m);
    },
    600_000,
  );

  // Under CI the install script builds it: missing there is a failure, not a skip.
  it.skipIf(!goBenchBinary() && !inCI)('the built binary exits 2 naming a missing flag, and 0 with its usage', () => {
    const bin = goBenchBinary();
    if (!bin) return expect.fail('tools/go-bench is not built (bash tools/go-bench/build.sh)');
    const bad = spawnSync(bin, ['bpf-lpm', '--pin', '/sys/fs/bpf/x', '--keys', 'k'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--values: is required');
    const help = spawnSync(bin, ['help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('veil-gobench wg-configure');
  });
});
