/**
 * The underlay capture and the probe marker, shared by `lab up` and `lab chaos`: tcpdump on the
 * underlay bridge, stopped with SIGINT and judged by its exit status and statistics, and a random
 * marker per run that every probe payload carries so the capture can be searched for it.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { pidAlive, sleep, spawnDetached, terminate, waitForLine } from './exec.js';
import { analyzeCapture, captureHealth, type CaptureAnalysis, type CaptureHealth, type CaptureOptions } from './pcap.js';
import { UNDERLAY_NETNS, writeState, type LabState } from './state.js';

/** tcpdump's packet-buffer timeout (its default, `pcap_set_timeout(1000)`). */
const CAPTURE_BLOCK_TIMEOUT_MS = 1_000;

/** 16 random bytes: `ping -p` takes at most 16 pattern bytes, and 16 random bytes never occur by chance. */
export function newMarker(): Buffer {
  return randomBytes(16);
}

export interface RunningCapture {
  pcap: string;
  log: string;
  pid: number | undefined;
  exited: Promise<{ code: number | null; signal: string | null }>;
}

/** Starts tcpdump on the underlay bridge (full packets, written per packet) and waits until it listens. */
export async function startCapture(state: LabState, pcap: string, log: string): Promise<RunningCapture> {
  writeFileSync(log, ''); // a previous run's statistics must not be read as this one's
  const cap = spawnDetached(
    'ip',
    // -B 65536 (KiB): a 64 MiB ring, so a loaded 2-core machine (tcpdump descheduled for a while
    // during the traffic burst) does not drop packets in the kernel (the default 2 MiB did).
    ['netns', 'exec', UNDERLAY_NETNS, 'tcpdump', '-i', 'br0', '-n', '-U', '-B', '65536', '-s', '0', '-w', pcap],
    log,
  );
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    cap.once('exit', (code, signal) => resolve({ code, signal })),
  );
  if (cap.pid !== undefined) state.helperPids.push(cap.pid);
  writeState(state);
  await waitForLine(log, /listening on/, 10_000, cap.pid, 'tcpdump');
  return { pcap, log, pid: cap.pid, exited };
}

export interface FinishedCapture {
  analysis: CaptureAnalysis;
  health: CaptureHealth;
}

/** Stops tcpdump with SIGINT (it then writes its statistics), reads the file and judges both. */
export async function stopCapture(state: LabState, cap: RunningCapture, opts: CaptureOptions): Promise<FinishedCapture> {
  let exit: { code: number | null; signal: string | null } = { code: null, signal: 'none (did not start)' };
  if (cap.pid !== undefined) {
    // libpcap hands packets over a ring block at a time: when a block fills, or after tcpdump's 1 s
    // timeout. A block still open at SIGINT is lost, and tcpdump does not count it, so its packets
    // are given the time to arrive. (--immediate-mode would avoid the wait but costs tcpdump enough
    // CPU per packet that a loaded machine drops packets in the lab's traffic bursts.)
    await sleep(CAPTURE_BLOCK_TIMEOUT_MS + 500);
    if (pidAlive(cap.pid)) process.kill(cap.pid, 'SIGINT');
    const r = await Promise.race([cap.exited, sleep(5_000).then(() => undefined)]);
    if (r) exit = r;
    else {
      await terminate(cap.pid);
      exit = { code: null, signal: 'SIGKILL (no exit 5 s after SIGINT)' };
    }
    state.helperPids = state.helperPids.filter((p) => p !== cap.pid);
    writeState(state);
  }
  const analysis = analyzeCapture(existsSync(cap.pcap) ? readFileSync(cap.pcap) : Buffer.alloc(0), opts);
  const health = captureHealth(existsSync(cap.log) ? readFileSync(cap.log, 'utf8') : '', exit, analysis);
  return { analysis, health };
}
