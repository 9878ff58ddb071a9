// The HTTP-over-unix-socket client: typed answers, typed errors, and the status socket's
// routing of the endpoints added for the CLI.
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AgentResponseError,
  AgentUnreachableError,
  DEFAULT_SOCKET,
  resolveSocketPath,
  StatusClient,
} from '../src/status-client.js';
import { startLabAgent, type LabAgent } from './fixtures/lab-agent.js';

describe('resolveSocketPath', () => {
  it('--socket > VEIL_STATUS_SOCKET > agent-core default', () => {
    expect(DEFAULT_SOCKET).toBe('/var/run/veil/status.sock');
    expect(resolveSocketPath(undefined, {})).toBe(DEFAULT_SOCKET);
    expect(resolveSocketPath(undefined, { VEIL_STATUS_SOCKET: '/run/x.sock' })).toBe('/run/x.sock');
    expect(resolveSocketPath('/tmp/a.sock', { VEIL_STATUS_SOCKET: '/run/x.sock' })).toBe('/tmp/a.sock');
    expect(resolveSocketPath('', { VEIL_STATUS_SOCKET: '' })).toBe(DEFAULT_SOCKET);
  });
});

describe('StatusClient against a scripted server', () => {
  let dir: string;
  let server: http.Server;
  let sock: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'veil-cliv-'));
    sock = join(dir, 's.sock');
    server = http.createServer((req, res) => {
      if (req.url === '/v1/status')
        res
          .writeHead(500, { 'Content-Type': 'application/json' })
          .end(JSON.stringify({ error: 'backend exploded', code: 'INTERNAL' }));
      else if (req.url === '/v1/bpf/ipcache') res.writeHead(200).end('<html>not json</html>');
      else res.writeHead(404, { 'Content-Type': 'application/json' }).end(JSON.stringify({ error: 'not found' }));
    });
    await new Promise<void>((r) => server.listen(sock, r));
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  it('maps HTTP errors, non-JSON bodies and missing endpoints to AgentResponseError', async () => {
    const c = new StatusClient({ socketPath: sock });
    const e1 = await c.status().catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(AgentResponseError);
    expect(e1).toMatchObject({
      statusCode: 500,
      code: 'INTERNAL',
      method: 'GET',
      path: '/v1/status',
      message: 'backend exploded',
      exitCode: 1,
    });
    const e2 = await c.ipcache().catch((e: unknown) => e);
    expect(e2).toMatchObject({
      name: 'AgentResponseError',
      statusCode: 200,
      message: 'the agent answered GET /v1/bpf/ipcache with HTTP 200 and a body that is not JSON',
    });
    const e3 = await c.counters().catch((e: unknown) => e);
    expect(e3).toMatchObject({
      statusCode: 404,
      message: 'the agent does not serve GET /v1/bpf/counters (older agent?): not found',
    });
    // An agent from before /v1/agent existed: status still works without it.
    expect(await c.agentInfo()).toBeUndefined();
  });

  it('unreachable sockets are AgentUnreachableError with the errno code', async () => {
    const missing = join(dir, 'missing.sock');
    const e = await new StatusClient({ socketPath: missing }).status().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(AgentUnreachableError);
    expect(e).toMatchObject({ code: 'ENOENT', socketPath: missing, exitCode: 1 });
  });
});

describe('the agent-core status socket endpoints', () => {
  let lab: LabAgent;
  beforeAll(async () => {
    lab = await startLabAgent();
  });
  afterAll(async () => {
    await lab?.stop();
  });

  it('serves /v1/agent, /v1/bpf/ipcache, /v1/bpf/counters; 405 for a wrong method; /v1/status unchanged', async () => {
    const c = new StatusClient({ socketPath: lab.socketPath });
    const info = await c.agentInfo();
    expect(info).toMatchObject({
      node: 'local',
      pid: process.pid,
      datapath: { attached: true, interfacesSource: 'attachments' },
      // eslint-disable-next-line @typescript-eslint/no-unsafe-assignment -- vitest's asymmetric matchers (expect.any/stringMatching) are typed any
      localKey: { fingerprint: expect.stringMatching(/^sha256:[0-9a-f]{16}$/) },
    });
    expect((await c.ipcache()).source).toBe('map');
    expect((await c.counters()).counters[0]).toEqual({ reason: 'encrypt', packets: '12345', bytes: '9876543' });
    const wrong = await c.request('GET', '/v1/keys/rotate').catch((e: unknown) => e);
    expect(wrong).toMatchObject({ statusCode: 405, code: 'METHOD_NOT_ALLOWED' });
    const st = await c.status();
    // notReadyReason is undefined (so absent from the JSON) when ready.
    expect(Object.keys(st)).toEqual([
      'node',
      'nodeId',
      'encryption',
      'backend',
      'driver',
      'keyIndex',
      'ready',
      'synced',
      'datapathAttached',
      'peers',
      'errors',
      'orphanPeers',
      'backendDetails',
      'counters',
      'localMaterial',
    ]);
    const notFound = await c.request('GET', '/v1/nope').catch((e: unknown) => e);
    expect(notFound).toMatchObject({ statusCode: 404 });
  });
});

describe('status-api helpers the CLI relies on', () => {
  it('flag names (unknown bits in hex), fingerprints of public material, numeric prefix order', async () => {
    const { ipcacheFlagNames, materialFingerprint, ipcacheRows } = await import('@veil/agent-core/status-api');
    expect(ipcacheFlagNames(0x17)).toEqual(['LOCAL', 'REMOTE', 'ENCRYPT_READY', 'IS_NODE']);
    expect(ipcacheFlagNames(0x48)).toEqual(['0x48']);
    expect(ipcacheFlagNames(0)).toEqual([]);
    const a = materialFingerprint({ 'veil.io/x': 'A', 'veil.io/y': 'B' });
    expect(materialFingerprint({ 'veil.io/y': 'B', 'veil.io/x': 'A', 'veil.io/gone': null })).toBe(a);
    expect(materialFingerprint({ 'veil.io/x': 'C', 'veil.io/y': 'B' })).not.toBe(a);
    const rows = ipcacheRows(
      ['10.0.10.0/24', 'fd00::2/128', '10.0.9.0/24', '9.9.9.9/32', 'fd00::10/128', '10.0.9.0/25'].map((prefix) => ({
        prefix,
        flags: 2,
        keyIndex: 0,
        nodeId: 0,
        ifindex: 0,
      })),
    );
    expect(rows.map((r) => r.prefix)).toEqual([
      '9.9.9.9/32',
      '10.0.9.0/24',
      '10.0.9.0/25',
      '10.0.10.0/24',
      'fd00::2/128',
      'fd00::10/128',
    ]);
    expect(rows[0]).toEqual({
      prefix: '9.9.9.9/32',
      node: null,
      nodeIP: null,
      flags: ['REMOTE'],
      flagBits: 2,
      keyIndex: 0,
      nodeId: 0,
      ifindex: 0,
    });
  });
});
