// `veil encrypt status` against a REAL agent-core Agent serving its status socket, with a backend
// that answers status() in the IPsec backend's shape (typed by @veil/backend-ipsec's
// IpsecStatusDetails, so a change there breaks this fixture at compile time).
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { BackendStatus } from '@veil/agent-core';
import type { IpsecStatusDetails } from '@veil/backend-ipsec';
import { FakeBackend } from '@veil/agent-core/fake';
import { runEncryptStatus } from '../src/commands/encrypt.js';
import type { EncryptionStatus } from '../src/render/encrypt.js';
import type { CommandIO } from '../src/render/io.js';
import { startLabAgent, type LabAgent } from './fixtures/lab-agent.js';

const run = promisify(execFile);
const MAIN = join(import.meta.dirname, '..', 'dist', 'main.js');

function bufferIO(opts: { tty?: boolean } = {}): CommandIO & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    stdout: { write: (s: string) => (out += s), isTTY: opts.tty === true },
    stderr: { write: (s: string) => (err += s) },
    env: {},
    out: () => out,
    err: () => err,
  };
}

/** Mid-rotation from index 3 to 4: node-1 is ready for 4, node-2 not yet. */
class IpsecLikeBackend extends FakeBackend {
  xfrmStat: Record<string, number> = { XfrmInError: 0, XfrmInNoStates: 3, XfrmOutPolBlock: 12, XfrmOutNoStates: 0 };

  override async status(): Promise<BackendStatus> {
    const base = await super.status();
    const peers = base.peers.map((p, i) => ({
      name: p.name,
      keyIndex: i === 0 ? 4 : 3,
      detail: `${i === 0 ? 4 : 2} states (2 out), v4, peer ready for index ${i === 0 ? 4 : 3}`,
      stats: { nodeId: 10 + i, states: i === 0 ? 4 : 2, highestSeq: String(1000 * (i + 1)), packets: 77 * (i + 1) },
    }));
    const details: IpsecStatusDetails = {
      nodeId: 7,
      tunnelIPs: '192.168.0.100',
      bootId: '0b1e5c1d-3f0a-4c7e-9d2b-6a5f4e3d2c1b',
      keysInUse: [
        { index: 3, algorithm: 'rfc4106(gcm(aes))', fingerprint: 'sha256:1111222233334444', perTunnel: true },
        { index: 4, algorithm: 'rfc4106(gcm(aes))', fingerprint: 'sha256:5555666677778888', perTunnel: true },
      ],
      retainedIndexes: [3],
      currentIndex: 4,
      previousIndex: 3,
      rotation: { from: 3, to: 4, peersReady: 1, peersTotal: 2, waitingFor: ['node-2'], reclaimInMs: 252_000 },
      states: { total: 6, out: 4, in: 2 },
      policies: 9,
      highestSeq: '18446744073709551000',
      xfrmStat: this.xfrmStat,
      driftRepairs: 2,
      mtu: 1418,
    };
    return {
      backend: 'ipsec',
      driver: 'xfrm',
      keyIndex: 4,
      peers,
      errors: ['drift repair: EPERM on state delete'],
      details: { ...details },
    };
  }
}

describe('veil encrypt status against a running agent (IPsec shape)', () => {
  let lab: LabAgent;
  beforeAll(async () => {
    lab = await startLabAgent({ backend: new IpsecLikeBackend(), config: { nodeId: 7 } });
  });
  afterAll(async () => {
    await lab?.stop();
  });

  it('the human view: backend, keys in use, rotation, sequence number, XFRM counts, repairs, then peers and non-zero errors', async () => {
    const io = bufferIO();
    expect(await runEncryptStatus({ socket: lab.socketPath }, io)).toBe(0);
    expect(io.err()).toBe('');
    const lines = io.out().split('\n');
    expect(lines.slice(0, 15)).toEqual([
      'Node:              local (node ID 7)',
      'Encryption:        enabled: ipsec, driver xfrm',
      'Key index:         current 4, previous 3',
      'Key 3:             rfc4106(gcm(aes)), sha256:1111222233334444, per node pair and direction',
      'Key 4:             rfc4106(gcm(aes)), sha256:5555666677778888, per node pair and direction',
      'Rotation:          3 → 4: 1/2 peers ready, waiting for node-2, old key reclaimed in 4m12s',
      'Max seq. number:   18446744073709551000',
      'XFRM states:       6 (4 out, 2 in)',
      'XFRM policies:     9',
      'XFRM errors:       2 counters non-zero (below)',
      'Drift repairs:     2',
      'MTU:               1418',
      'Errors:            1',
      '  - drift repair: EPERM on state delete',
      '',
    ]);
    // The rich cluster: node-1 and node-2 programmed, node-3..5 pending or refused (nothing to show).
    const peersTable = lines.slice(15, 21);
    expect(peersTable[0]).toMatch(/^PEER\s+NODE ID\s+KEY INDEX\s+STATES\s+MAX SEQ\s+PACKETS\s+DETAIL$/);
    expect(peersTable[1]).toMatch(/^node-1\s+10\s+4\s+4\s+1000\s+77\s+4 states \(2 out\), v4, peer ready for index 4$/);
    expect(peersTable[2]).toMatch(/^node-2\s+11\s+3\s+2\s+2000\s+154\s+2 states \(2 out\), v4, peer ready for index 3$/);
    for (const row of peersTable.slice(3)) expect(row).toMatch(/^node-[345](\s+-){6}$/);
    // Only the non-zero XFRM counters, as `cilium-dbg encrypt status` lists them.
    const errTable = io.out().split('\n\n')[2]!.trim().split('\n');
    expect(errTable.map((l) => l.split(/\s+/))).toEqual([
      ['XFRM', 'ERROR', 'COUNT'],
      ['XfrmInNoStates', '3'],
      ['XfrmOutPolBlock', '12'],
    ]);
  });

  it('-o json: every XFRM counter, per-peer key index and sequence number, rotation progress', async () => {
    const io = bufferIO();
    expect(await runEncryptStatus({ socket: lab.socketPath, output: 'json' }, io)).toBe(0);
    const doc = JSON.parse(io.out()) as EncryptionStatus;
    expect(doc).toMatchObject({
      kind: 'EncryptionStatus',
      node: 'local',
      nodeId: 7,
      enabled: true,
      backend: 'ipsec',
      driver: 'xfrm',
      keys: { current: 4, previous: 3 },
      rotation: { from: 3, to: 4, peersReady: 1, peersTotal: 2, waitingFor: ['node-2'], reclaimInSeconds: 252 },
      highestSeq: '18446744073709551000',
      xfrm: {
        states: { total: 6, out: 4, in: 2 },
        policies: 9,
        errors: { XfrmInError: 0, XfrmInNoStates: 3, XfrmOutPolBlock: 12, XfrmOutNoStates: 0 },
      },
      driftRepairs: 2,
      mtu: 1418,
      errors: ['drift repair: EPERM on state delete'],
    });
    expect(doc.keys.inUse.map((k) => k.index)).toEqual([3, 4]);
    expect(doc.peers.map((p) => [p.node, p.nodeId, p.keyIndex, p.highestSeq, p.states])).toEqual([
      ['node-1', 10, 4, '1000', 4],
      ['node-2', 11, 3, '2000', 2],
      ['node-3', null, null, null, null],
      ['node-4', null, null, null, null],
      ['node-5', null, null, null, null],
    ]);
    // A counter that moves shows at the next query (read per request, not cached).
    (lab.backend as IpsecLikeBackend).xfrmStat = { XfrmInNoStates: 4 };
    const again = bufferIO();
    await runEncryptStatus({ socket: lab.socketPath, output: 'yaml' }, again);
    expect((parseYaml(again.out()) as EncryptionStatus).xfrm?.errors).toEqual({ XfrmInNoStates: 4 });
  });

  it('the built CLI: `veil encrypt status -o json` and the unreachable-agent exit code', async () => {
    const { stdout } = await run(process.execPath, [MAIN, 'encrypt', 'status', '-o', 'json', '--socket', lab.socketPath]);
    expect((JSON.parse(stdout) as EncryptionStatus).backend).toBe('ipsec');
    const missing = join(lab.socketPath, '..', 'nope.sock');
    const failed = await run(process.execPath, [MAIN, 'encrypt', 'status', '--socket', missing]).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect(failed).toMatchObject({ code: 1 });
    expect((failed as { stderr: string }).stderr).toContain(`cannot reach the Veil agent at ${missing}`);
  });
});

describe('veil encrypt status with a backend without XFRM (WireGuard-like)', () => {
  let lab: LabAgent;
  beforeAll(async () => {
    lab = await startLabAgent();
  });
  afterAll(async () => {
    await lab?.stop();
  });

  it('shows backend and peers, and no XFRM sections', async () => {
    const io = bufferIO();
    expect(await runEncryptStatus({ socket: lab.socketPath }, io)).toBe(0);
    expect(io.out()).toMatch(/^Encryption: +enabled: fake, driver userspace \(fake\)$/m);
    expect(io.out()).not.toContain('XFRM');
    const json = bufferIO();
    await runEncryptStatus({ socket: lab.socketPath, output: 'json' }, json);
    const doc = JSON.parse(json.out()) as EncryptionStatus;
    expect(doc.xfrm).toBeNull();
    expect(doc.rotation).toBeNull();
    expect(doc.peers.map((p) => p.node)).toEqual(['node-1', 'node-2', 'node-3', 'node-4', 'node-5']);
  });
});
