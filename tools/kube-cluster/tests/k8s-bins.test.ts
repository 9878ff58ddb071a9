import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describePrivileged } from '@veil/test-utils';
import { k8sBinary, k8sVersions } from '@veil/test-utils/k8s-bins';
import { describe, expect, it } from 'vitest';

const BUILD = fileURLToPath(new URL('../../k8s-bins/build.sh', import.meta.url));

describe('tools/k8s-bins/build.sh', () => {
  it('refuses an unknown program by name', () => {
    const dir = mkdtempSync(join(tmpdir(), 'veil-k8s-bins-test-'));
    try {
      const r = spawnSync('bash', [BUILD, 'kubectl'], { encoding: 'utf8', env: { ...process.env, VEIL_K8S_BINS: dir } });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain("unknown program 'kubectl'");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describePrivileged('tools/k8s-bins/build.sh, everything built', ['helm', 'kube-apiserver', 'etcd'], () => {
  it('a second run only checks stamps: seconds, and prints the pinned paths', () => {
    const t0 = Date.now();
    const out = execFileSync('bash', [BUILD], { encoding: 'utf8', timeout: 60_000 });
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(out.trim().split('\n')).toEqual([k8sBinary('helm'), k8sBinary('kube-apiserver'), k8sBinary('etcd')]);
  });

  it('the programs are the versions in versions.env', () => {
    const v = k8sVersions();
    expect(execFileSync(k8sBinary('helm')!, ['version', '--short'], { encoding: 'utf8' })).toContain(v.helm);
    expect(execFileSync(k8sBinary('kube-apiserver')!, ['--version'], { encoding: 'utf8' }).trim()).toBe(
      `Kubernetes ${v['kube-apiserver']}`,
    );
    // Debian's package version 3.4.23-4+b4 is etcd 3.4.23.
    expect(execFileSync(k8sBinary('etcd')!, ['--version'], { encoding: 'utf8' })).toContain(
      `etcd Version: ${v.etcd.split('-')[0]}`,
    );
  });
});
