import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, type V1Status, type VersionInfo } from '@kubernetes/client-node';
import { describePrivileged } from '@veil/test-utils';
import { k8sVersions } from '@veil/test-utils/k8s-bins';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeCluster, KubeClusterError, generatePki } from '../src/index.js';

const START_TIMEOUT = 300_000;

describe('generatePki', () => {
  it('issues a serving cert for 127.0.0.1 and a system:masters client cert, both chained to the CA', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'veil-pki-test-'));
    try {
      const pki = await generatePki(dir);
      for (const cert of [pki.servingCert, pki.adminCert]) {
        expect(execFileSync('openssl', ['verify', '-CAfile', pki.caCert, cert], { encoding: 'utf8' })).toContain(': OK');
      }
      const serving = execFileSync(
        'openssl',
        ['x509', '-in', pki.servingCert, '-noout', '-ext', 'subjectAltName,extendedKeyUsage'],
        { encoding: 'utf8' },
      );
      expect(serving).toContain('IP Address:127.0.0.1');
      expect(serving).toContain('TLS Web Server Authentication');
      const admin = execFileSync('openssl', ['x509', '-in', pki.adminCert, '-noout', '-subject', '-ext', 'extendedKeyUsage'], {
        encoding: 'utf8',
      });
      expect(admin).toMatch(/O\s*=\s*system:masters/);
      expect(admin).toContain('TLS Web Client Authentication');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('generatePki with servingIPs', () => {
  it('adds the addresses to the serving certificate (a lab reaches the apiserver on its bridge address) and refuses a non-address', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'veil-pki-test-'));
    try {
      const pki = await generatePki(dir, { servingIPs: ['198.18.0.254'] });
      const sans = execFileSync('openssl', ['x509', '-in', pki.servingCert, '-noout', '-ext', 'subjectAltName'], {
        encoding: 'utf8',
      });
      expect(sans).toContain('IP Address:127.0.0.1');
      expect(sans).toContain('IP Address:198.18.0.254');
      await expect(generatePki(dir, { servingIPs: ['198.18.0.254,DNS:evil'] })).rejects.toThrow(KubeClusterError);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('KubeCluster.start without the programs', () => {
  it('names the missing binary in a KubeClusterError from the process', async () => {
    const err = await KubeCluster.start({
      etcdBinary: '/nonexistent/etcd',
      apiserverBinary: '/nonexistent/kube-apiserver',
      readyTimeoutMs: 5_000,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeClusterError);
    expect((err as KubeClusterError).component).toBe('etcd');
    expect((err as KubeClusterError).message).toContain('/nonexistent/etcd');
    expect((err as KubeClusterError).message).toContain('ENOENT');
  });
});

describePrivileged('KubeCluster: the real etcd + kube-apiserver on loopback', ['etcd', 'kube-apiserver'], () => {
  let cluster: KubeCluster;
  beforeAll(async () => {
    cluster = await KubeCluster.start({ log: (l) => process.stderr.write(`[kube-cluster] ${l}\n`) });
    await cluster.ensure('/api/v1/namespaces/kube-system/serviceaccounts', { metadata: { name: 'veil' } });
    await cluster.ensure('/api/v1/nodes', { metadata: { name: 'n1' } });
  }, START_TIMEOUT);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('is the pinned kube-apiserver, ready, on 127.0.0.1 only', async () => {
    expect(cluster.server).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect((await cluster.request('GET', '/readyz')).body).toBe('ok');
    const version = await cluster.request<VersionInfo>('GET', '/version', undefined, { expect: [200] });
    expect(version.body.gitVersion).toBe(k8sVersions()['kube-apiserver']);
    const listening = execFileSync('ss', ['-Htlnp'], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.includes(`pid=${cluster.pids.apiserver},`) || l.includes(`pid=${cluster.pids.etcd},`));
    expect(listening.length).toBeGreaterThanOrEqual(3);
    for (const l of listening) expect(l).toMatch(/\s127\.0\.0\.1:\d+\s/);
  });

  it('the admin kubeconfig works with @kubernetes/client-node', async () => {
    const api = cluster.kubeConfig().makeApiClient(CoreV1Api);
    const names = (await api.listNamespace()).items.map((n) => n.metadata?.name);
    expect(names).toEqual(expect.arrayContaining(['default', 'kube-system']));
  });

  it('refuses a made-up token (401) and anonymous writes', async () => {
    expect((await cluster.request('GET', '/api/v1/nodes', undefined, { creds: { token: 'not-a-token' } })).status).toBe(401);
  });

  it('a TokenRequest token authenticates as the ServiceAccount, and RBAC grants it nothing by default', async () => {
    const token = await cluster.issueToken({ namespace: 'kube-system', serviceAccount: 'veil' });
    const who = await cluster.whoAmI({ token });
    expect(who.username).toBe('system:serviceaccount:kube-system:veil');
    expect(who.groups).toContain('system:serviceaccounts:kube-system');
    expect(who.extra['authentication.kubernetes.io/node-name']).toBeUndefined();
    const denied = await cluster.request<V1Status>('GET', '/api/v1/nodes', undefined, { creds: { token } });
    expect(denied.status).toBe(403);
    expect(denied.body.message).toContain('system:serviceaccount:kube-system:veil');
  });

  it('a token bound to a Pod on n1 carries the node name in the user extra info', async () => {
    const { token, pod } = await cluster.nodeBoundToken({ namespace: 'kube-system', serviceAccount: 'veil', node: 'n1' });
    const who = await cluster.whoAmI({ token });
    expect(who.username).toBe('system:serviceaccount:kube-system:veil');
    expect(who.extra['authentication.kubernetes.io/node-name']).toEqual(['n1']);
    expect(who.extra['authentication.kubernetes.io/pod-name']).toEqual([pod.name]);
    expect(who.extra['authentication.kubernetes.io/pod-uid']).toEqual([pod.uid]);
  });

  it('a bound token dies with its Pod', async () => {
    const { token, pod } = await cluster.nodeBoundToken({
      namespace: 'kube-system',
      serviceAccount: 'veil',
      node: 'n1',
      podName: 'short-lived',
    });
    await cluster.request('DELETE', `/api/v1/namespaces/kube-system/pods/${pod.name}?gracePeriodSeconds=0`, undefined, {
      expect: [200],
    });
    // The apiserver caches a successful token check for a few seconds, then re-checks the Pod.
    let status = 0;
    for (let i = 0; i < 120 && status !== 401; i++) {
      status = (
        await cluster.request(
          'POST',
          '/apis/authentication.k8s.io/v1/selfsubjectreviews',
          { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
          { creds: { token } },
        )
      ).status;
      if (status !== 401) await new Promise((r) => setTimeout(r, 250));
    }
    expect(status).toBe(401);
  });

  it('stop() ends both processes by PID and deletes its directory', async () => {
    const { etcd, apiserver } = cluster.pids;
    const dir = cluster.dir;
    await cluster.stop();
    for (const pid of [etcd, apiserver]) expect(() => process.kill(pid!, 0)).toThrow(/ESRCH/);
    expect(existsSync(dir)).toBe(false);
  });
});
