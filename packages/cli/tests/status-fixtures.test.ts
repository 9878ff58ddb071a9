// Records the status-socket documents the render tests use, from a REAL agent-core Agent (fakes
// for backend/datapath/cluster) over its unix socket. `VEIL_CAPTURE_FIXTURES=1 npx vitest run
// tests/status-fixtures.test.ts` rewrites tests/fixtures/<scenario>/*.json; a normal run captures
// again and checks the committed fixtures still have the shape the agent serves (drift guard).
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InMemoryCluster } from '@veil/agent-core';
import { FakeBackend, FakeDatapath, FAKE_KEY_ANNOTATION } from '@veil/agent-core/fake';
import { StatusClient, AgentResponseError } from '../src/status-client.js';
import { keyFor, startLabAgent, type LabAgent } from './fixtures/lab-agent.js';

const FIXTURES = join(import.meta.dirname, 'fixtures');
const CAPTURE = process.env.VEIL_CAPTURE_FIXTURES === '1';

/** Volatile process facts replaced by fixed values so the recorded text is reproducible. */
function normalizeAgentInfo(info: Record<string, unknown>): Record<string, unknown> {
  return { ...info, pid: 4242, startedAt: '2026-11-22T10:00:00.000Z', uptimeSeconds: 3723 };
}

async function captureScenario(lab: LabAgent, rotate: boolean): Promise<Record<string, unknown>> {
  const client = new StatusClient({ socketPath: lab.socketPath });
  const docs: Record<string, unknown> = {
    status: await client.status(),
    agent: normalizeAgentInfo((await client.agentInfo()) as unknown as Record<string, unknown>),
    ipcache: await client.ipcache(),
    counters: await client.counters(),
  };
  if (rotate) docs.rotate = await client.rotateKeys();
  else {
    const err = await client.rotateKeys().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentResponseError);
    docs['rotate-error'] = {
      statusCode: (err as AgentResponseError).statusCode,
      code: (err as AgentResponseError).code,
      message: (err as AgentResponseError).message,
    };
  }
  return docs;
}

function shape(v: unknown): unknown {
  if (Array.isArray(v)) return v.length === 0 ? [] : [shape(v[0])];
  if (v !== null && typeof v === 'object')
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, shape((v as Record<string, unknown>)[k])]),
    );
  return v === null ? 'null' : typeof v;
}

async function record(name: string, docs: Record<string, unknown>): Promise<void> {
  const dir = join(FIXTURES, name);
  if (CAPTURE) {
    await mkdir(dir, { recursive: true });
    for (const [k, v] of Object.entries(docs)) await writeFile(join(dir, `${k}.json`), `${JSON.stringify(v, null, 2)}\n`);
    return;
  }
  for (const [k, v] of Object.entries(docs)) {
    const committed = JSON.parse(await readFile(join(dir, `${k}.json`), 'utf8')) as unknown;
    expect(shape(v), `${name}/${k}.json`).toEqual(shape(committed));
  }
}

describe('status fixtures (recorded from a real agent-core status socket)', () => {
  it('rich: WireGuard-like backend with rotation, introspectable datapath, strict mode, mixed peer states', async () => {
    const lab = await startLabAgent({
      config: {
        encryption: {
          enabled: true,
          type: 'fake',
          nodeEncryption: true,
          strictMode: { enabled: true, cidrs: ['10.0.0.0/16'], allowRemoteNodeIdentities: false },
          wireguard: { port: 51871, userspaceFallback: true, persistentKeepalive: 0, mtu: 0 },
          ipsec: { secretName: 'veil-ipsec-keys', keyFile: '/etc/veil/ipsec/keys', keyRotationDuration: '5m' },
        },
      },
      version: '0.1.0',
    });
    try {
      const docs = await captureScenario(lab, true);
      const st = docs.status as { peers: { name: string; state: string }[] };
      expect(st.peers.map((p) => `${p.name}=${p.state}`)).toEqual([
        'node-1=active',
        'node-2=active',
        'node-3=pending',
        'node-4=refused',
        'node-5=refused',
      ]);
      expect(JSON.stringify(docs)).not.toContain(lab.backend.privateKey.reveal());
      await record('rich', docs);
    } finally {
      await lab.stop();
    }
  });

  it('minimal: plain FakeBackend (no rotation) and FakeDatapath (derived ipcache, packet-only counters)', async () => {
    const cluster = new InMemoryCluster();
    cluster.upsertNode({
      name: 'node-1',
      internalIPs: ['192.168.0.1'],
      podCIDRs: ['10.0.1.0/24'],
      annotations: { [FAKE_KEY_ANNOTATION]: keyFor(1) },
    });
    cluster.upsertNode({
      name: 'node-2',
      internalIPs: ['192.168.0.2'],
      podCIDRs: ['10.0.2.0/24'],
      annotations: { [FAKE_KEY_ANNOTATION]: keyFor(2) },
    });
    const datapath = new FakeDatapath();
    datapath.verdicts = { encrypt: 7n, pass: 0n, drop_strict: 0n };
    const lab = await startLabAgent({
      cluster,
      backend: new FakeBackend({ keyIndex: 3 }),
      datapath,
      expectedPeers: 2,
      version: '0.1.0',
    });
    try {
      await record('minimal', await captureScenario(lab, false));
    } finally {
      await lab.stop();
    }
  });
});
