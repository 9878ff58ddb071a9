import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultRouteDevice, splitAgentArgs } from '../src/agent-command.js';
import { UsageError } from '../src/errors.js';

describe('veil agent argument split', () => {
  it('takes its own flags and passes config flags through', () => {
    const r = splitAgentArgs([
      '--config',
      'a.yaml',
      '--kubeconfig=/k',
      '--underlay-device',
      'eth0',
      '--encryption.wireguard.port=1',
      '--debug',
      '--pod-cidrs',
      '10.0.0.0/24, 10.1.0.0/24',
    ]);
    expect(r.cli).toEqual({ debug: true, kubeconfig: '/k', underlayDevice: 'eth0', podCIDRs: ['10.0.0.0/24', '10.1.0.0/24'] });
    expect(r.configArgv).toEqual(['--config', 'a.yaml', '--encryption.wireguard.port=1']);
  });

  it('names a flag without a value or with a bad CIDR', () => {
    expect(() => splitAgentArgs(['--kubeconfig'])).toThrow(UsageError);
    expect(() => splitAgentArgs(['--bpf-pin-dir', '--debug'])).toThrow(/--bpf-pin-dir: needs a value/);
    expect(() => splitAgentArgs(['--pod-cidrs=10.0.0.0'])).toThrow(/--pod-cidrs: "10.0.0.0" is not a CIDR/);
  });

  it('finds the default route device in /proc/net/route format', () => {
    const dir = mkdtempSync(join(tmpdir(), 'veil-lab-route-'));
    const f = join(dir, 'route');
    writeFileSync(
      f,
      'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n' +
        'eth1\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n' +
        'eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n',
    );
    expect(defaultRouteDevice(f)).toBe('eth0');
    expect(defaultRouteDevice(join(dir, 'missing'))).toBeUndefined();
  });
});
