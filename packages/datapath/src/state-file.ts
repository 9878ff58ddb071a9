import { rmSync } from 'node:fs';
import { readVersionedJson, writeJsonAtomic, type IpcacheEntry } from '@veil/agent-core';

// Node names are not in the BPF ipcache (it is keyed by prefix). This JSON file records which
// node owns which prefixes, so a restarted agent can report `entries()` by node name.
//
// It is advisory: on start every recorded entry is checked against the pinned map and adopted
// only when the map holds exactly its prefixes/values (see verifyAdopted). A lost or stale write
// therefore never causes wrong state, only a re-upsert by the reconciler; that is why writes are
// coalesced instead of synchronous per upsert (5,000 nodes would otherwise rewrite ~1 MB 5,000 times).

const VERSION = 1;

interface StateFileV1 {
  version: 1;
  /** The pin dir the entries were written to (a different one means the file is not ours). */
  pinDir: string;
  nodes: IpcacheEntry[];
}

/** Reads the recorded entries; [] when absent, unreadable, of another version or another pin dir. */
export function readStateFile(path: string, pinDir: string): { nodes: IpcacheEntry[]; problem?: string } {
  const { value: j, problem } = readVersionedJson<StateFileV1>(path, VERSION);
  if (problem !== undefined) return { nodes: [], problem };
  if (j === undefined) return { nodes: [] };
  if (!Array.isArray(j.nodes)) return { nodes: [], problem: `${path}: unknown format (no nodes)` };
  if (j.pinDir !== pinDir) return { nodes: [], problem: `${path} belongs to pin dir ${String(j.pinDir)}, not ${pinDir}` };
  return { nodes: j.nodes };
}

/** Writes atomically (temp file + rename), creating the directory. */
export function writeStateFile(path: string, pinDir: string, nodes: Iterable<IpcacheEntry>): void {
  const body: StateFileV1 = { version: VERSION, pinDir, nodes: [...nodes] };
  writeJsonAtomic(path, body);
}

export function removeStateFile(path: string): void {
  rmSync(path, { force: true });
}

/** Coalesces writes: at most one per `delayMs`; `flush()` writes now if anything is pending. */
export class StateFileWriter {
  private timer: NodeJS.Timeout | undefined;
  private dirty = false;
  lastError: Error | undefined;

  constructor(
    readonly path: string,
    private readonly pinDir: string,
    private readonly snapshot: () => Iterable<IpcacheEntry>,
    private readonly delayMs = 200,
    private readonly onError: (e: Error) => void = () => {},
  ) {}

  markDirty(): void {
    this.dirty = true;
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, this.delayMs);
    this.timer.unref();
  }

  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (!this.dirty) return;
    this.dirty = false;
    try {
      writeStateFile(this.path, this.pinDir, this.snapshot());
      this.lastError = undefined;
    } catch (e) {
      // Advisory file: the next start re-verifies against the map; keep running.
      this.lastError = e as Error;
      this.onError(e as Error);
    }
  }
}
