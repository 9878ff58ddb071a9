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
    // --immediate-mode: each packet reaches the file as it arrives; otherwise libpcap hands them over
    // a ring block at a time and the block still filling when SIGINT comes is lost uncounted.
    // -B 16 MiB (default 2): a burst (the TCP probes) while tcpdump is starved of CPU (the qemu lane on
    // a loaded machine) waits in the buffer instead of being "dropped by kernel".
    [
      'netns',
      'exec',
      UNDERLAY_NETNS,
      'tcpdump',
      '-i',
      'br0',
      '-n',
      '--immediate-mode',
      '-B',
      '16384',
      '-U',
      '-s',
      '0',
      '-w',
      pcap,
    ],
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
