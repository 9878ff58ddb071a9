// `veil peers -o json | jq` with hundreds of peers: the CLI must not exit before a slow reader has
// taken all of stdout (a pipe holds 64 KiB; process.exit() drops what is still queued).
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InMemoryCluster } from '@veil/agent-core';
import { FAKE_KEY_ANNOTATION } from '@veil/agent-core/fake';
import { keyFor, startLabAgent, type LabAgent } from './fixtures/lab-agent.js';

const run = promisify(execFile);
const MAIN = join(import.meta.dirname, '..', 'dist', 'main.js');
const PEERS = 300;

/**
 * `veil <args> | slow reader` through a real pipe (64 KiB), as a shell builds it: the reader takes
 * nothing until the CLI has exited (its exit status is in a file) or, since a CLI that waits for
 * the pipe to drain cannot exit before it reads, until 3 s have passed; then it reads everything.
 */
async function runWithSlowReader(args: string[], dir: string): Promise<{ cliExit: number; stdout: string; stderr: string }> {
  const done = join(dir, `done-${process.hrtime.bigint()}`);
  const script = [
    `{ "$NODE" "$MAIN" "$@"; echo $? > "$DONE.tmp"; mv "$DONE.tmp" "$DONE"; } | {`,
    '  i=0; while [ ! -e "$DONE" ] && [ $i -lt 60 ]; do sleep 0.05; i=$((i+1)); done; cat; }',
  ].join('\n');
  // Asynchronous: the agent answering the CLI lives in this process.
  const r = await run('sh', ['-c', script, 'sh', ...args], {
    env: { ...process.env, NODE: process.execPath, MAIN, DONE: done },
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    timeout: 60_000,
  });
  return { cliExit: Number(readFileSync(done, 'utf8').trim()), stdout: r.stdout, stderr: r.stderr };
}

describe('stdout is drained before the CLI exits', () => {
  let lab: LabAgent;
  const dir = mkdtempSync(join(tmpdir(), 'veil-cli-drain-'));
  beforeAll(async () => {
    const cluster = new InMemoryCluster();
    for (let i = 1; i <= PEERS; i++) {
      cluster.upsertNode({
        name: `node-${i}`,
        internalIPs: [`192.168.${i >> 8}.${i & 255}`],
        podCIDRs: [`10.${i >> 8}.${i & 255}.0/24`],
        annotations: { [FAKE_KEY_ANNOTATION]: keyFor(i) },
      });
    }
    lab = await startLabAgent({ cluster, expectedPeers: PEERS });
  }, 120_000);
  afterAll(async () => {
    await lab?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`veil peers -o json with ${PEERS} peers (> 64 KiB) through a slow pipe parses whole`, async () => {
    const r = await runWithSlowReader(['peers', '-o', 'json', '--socket', lab.socketPath], dir);
    expect(r.cliExit).toBe(0);
    expect(Buffer.byteLength(r.stdout)).toBeGreaterThan(64 * 1024);
    const doc = JSON.parse(r.stdout) as { items: { node: string }[] };
    expect(doc.items).toHaveLength(PEERS);
    expect(new Set(doc.items.map((p) => p.node)).size).toBe(PEERS);
  }, 60_000);

  it('the same with -o yaml', async () => {
    const r = await runWithSlowReader(['peers', '-o', 'yaml', '--socket', lab.socketPath], dir);
    expect(r.cliExit).toBe(0);
    expect(Buffer.byteLength(r.stdout)).toBeGreaterThan(64 * 1024);
    const { parse } = await import('yaml');
    expect((parse(r.stdout) as { items: unknown[] }).items).toHaveLength(PEERS);
  }, 60_000);
});
