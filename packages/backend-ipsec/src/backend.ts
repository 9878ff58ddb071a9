import { execFile } from 'node:child_process';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import {
  backendSection,
  parseDuration,
  type AgentConfig,
  type BackendPeerStatus,
  type BackendStatus,
  type EncryptionBackend,
  type EventRecorder,
  type LocalMaterial,
  type Logger,
  type PeerAnnotationSpec,
  type PeerNode,
  type PeerProgramResult,
  type Steering,
} from '@veil/agent-core';
import { XfrmClient, parseXfrmStat, readXfrmStat, type XfrmPolicy, type XfrmProcStats, type XfrmState } from 'node-xfrm-bindings';
import { Counter, Gauge, type Registry } from 'prom-client';
import { ipsecConfig } from './config.js';
import { bootIdProblem, deriveDirectionalKey, xfrmTransform } from './derive.js';
import { IpsecConfigError, IpsecError, IpsecKeyFileError, IpsecPeerError } from './errors.js';
import { MAX_KEY_INDEX, MIN_KEY_INDEX, parseKeyFile, type IpsecKey } from './keyfile.js';
import {
  KEY_INDEX_SHIFT,
  MARK_ENCRYPT,
  MARK_MASK_PEER,
  NODE_ID_SHIFT,
  VEIL_REQID,
  basePolicies,
  commonFamilies,
  isOurPolicy,
  isOurState,
  peerObjects,
  policyKeyIndex,
  stateKeyIndex,
  stateOwner,
  type Family,
  type LocalNode,
  type Owner,
  type RemoteNode,
  type XfrmObjects,
} from './model.js';
import {
  DEFAULT_BOOT_ID_PATH,
  deviceMtuOf,
  discoverTunnelIPs,
  espInnerMtu,
  formatTunnelIPs,
  parseTunnelIPs,
  readBootId,
  type TunnelIPs,
} from './node.js';
import { watchXfrm, type XfrmWatch } from './watch.js';
import {
  applyPlan,
  applyPlanToView,
  dumpXfrm,
  planDiff,
  planSize,
  stateId,
  type XfrmChange,
  type XfrmOps,
  type XfrmPlan,
} from './xfrm-sync.js';

export type { XfrmOps } from './xfrm-sync.js';

/** This node's boot ID (a reboot changes every key derived with it). */
export const BOOT_ID_ANNOTATION = 'veil.io/ipsec-boot-id';
/** The node's tunnel addresses (`ipv4[,ipv6]`): both ends derive keys and build SAs from them. */
export const TUNNEL_IPS_ANNOTATION = 'veil.io/ipsec-tunnel-ips';
/** "Ready for key index n": the node has inbound states for index n from every peer. */
export const KEY_INDEX_ANNOTATION = 'veil.io/ipsec-key-index';
/** The node's key epoch (u32, part of every key it derives); bumped when an outbound SA had to be re-created. */
export const EPOCH_ANNOTATION = 'veil.io/ipsec-epoch';

/** Sequence numbers above this are reported (status error + metric) long before ESN's 2^64. */
export const SEQ_WARN_THRESHOLD = 2n ** 62n;
const DEFAULT_UNDERLAY_MTU = 1500;

/** Knobs that are not part of the agent config (tests, several nodes on one host). */
export interface IpsecBackendOptions {
  /** Network namespace (name under /run/netns) holding the XFRM state. Default: the agent's. */
  netns?: string;
  /** This node's tunnel addresses. Default: env `VEIL_IPSEC_TUNNEL_IPS` (`ipv4[,ipv6]`), else the default routes' sources. */
  tunnelIPs?: TunnelIPs;
  /** Boot ID to use instead of reading {@link bootIdPath}. */
  bootId?: string;
  /** Default `/proc/sys/kernel/random/boot_id`. */
  bootIdPath?: string;
  /** Key file. Default `encryption.ipsec.keyFile`. */
  keyFile?: string;
  /** How often the key file is re-read (Secret updates swap a symlink). Default 5000 ms. */
  keyPollIntervalMs?: number;
  /** Period of the drift check (compare with the kernel, repair). Default 30000 ms; 0 disables. */
  driftIntervalMs?: number;
  /** Overrides `encryption.ipsec.keyRotationDuration` (ms). */
  keyRotationDurationMs?: number;
  /** Underlay MTU. Default: the MTU of the device holding the tunnel address, else 1500. */
  underlayMtu?: number;
  /** XFRM operations to use instead of a netlink XfrmClient (tests). */
  xfrm?: XfrmOps;
  /** Read the XFRM error counters from this file instead of `/proc/net/xfrm_stat` (tests). */
  xfrmStatPath?: string;
  /**
   * React to XFRM notifications (deletions, updates, flushes: `ip xfrm monitor`) with a repair
   * within `repairDebounceMs`, besides the periodic compare. Default: true unless `xfrm` is given.
   */
  watchNotifications?: boolean;
  /** Delay between a notification and the repair it triggers (coalesces bursts). Default 200 ms. */
  repairDebounceMs?: number;
}

interface PeerRecord extends RemoteNode {
  /** The index the peer reports inbound states for (its annotation). */
  readonly readyIndex: number;
}

interface Rotation {
  readonly from: number;
  readonly to: number;
  readonly startedAt: number;
}

function keyIndexProblem(v: string): string | undefined {
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  return n >= MIN_KEY_INDEX && n <= MAX_KEY_INDEX ? undefined : `must be a key index ${MIN_KEY_INDEX}..${MAX_KEY_INDEX}`;
}

function epochProblem(v: string): string | undefined {
  return /^\d{1,10}$/.test(v) && Number(v) <= 0xffffffff ? undefined : 'must be an integer 0..4294967295';
}

function tunnelIPsProblem(v: string): string | undefined {
  const t = parseTunnelIPs(v);
  return typeof t === 'string' ? t : undefined;
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function seqOf(s: XfrmState): bigint {
  const r = s.replay;
  if (!r) return 0n;
  const out = (BigInt(r.oseqHi) << 32n) | BigInt(r.oseq >>> 0);
  const inb = (BigInt(r.seqHi) << 32n) | BigInt(r.seq >>> 0);
  return out > inb ? out : inb;
}

/** `BackendStatus.details` of this backend (what `veil encrypt status` reads). */
export interface IpsecStatusDetails {
  readonly nodeId: number | undefined;
  readonly tunnelIPs: string | undefined;
  readonly bootId: string | undefined;
  /** Fingerprints only, never keys. */
  readonly keysInUse: readonly { index: number; algorithm: string; fingerprint: string; perTunnel: boolean }[];
  readonly retainedIndexes: readonly number[];
  readonly currentIndex: number | undefined;
  readonly previousIndex: number | undefined;
  readonly rotation:
    | {
        from: number;
        to: number;
        peersReady: number;
        peersTotal: number;
        waitingFor: string[];
        reclaimInMs: number;
      }
    | undefined;
  readonly states: { total: number; out: number; in: number };
  readonly policies: number;
  /** Decimal string (64-bit ESN). */
  readonly highestSeq: string;
  /** /proc/net/xfrm_stat. */
  readonly xfrmStat: XfrmProcStats;
  readonly driftRepairs: number;
  readonly mtu: number | undefined;
}

/**
 * The IPsec EncryptionBackend: ESP tunnel-mode SAs between node addresses, one key per node pair
 * and direction derived from the key file, selected by the mark the BPF `from-pod` program sets.
 * Every write is a diff against the kernel's dump; `init` adopts what a previous agent left and
 * `close` leaves it in place. A catch-all BLOCK policy keeps marked traffic from leaving in clear.
 */
export class IpsecBackend implements EncryptionBackend {
  readonly name = 'ipsec';
  /** Marks and SPIs carry the node ID: the agent allocates one when `nodeId` is 0. */
  readonly needsNodeId = true;
  readonly peerAnnotations: readonly PeerAnnotationSpec[] = [
    { key: BOOT_ID_ANNOTATION, required: true, unique: false, validate: bootIdProblem },
    { key: TUNNEL_IPS_ANNOTATION, required: true, unique: true, validate: tunnelIPsProblem },
    { key: KEY_INDEX_ANNOTATION, required: true, unique: false, validate: keyIndexProblem },
    { key: EPOCH_ANNOTATION, required: true, unique: false, validate: epochProblem },
  ];
  private readonly log: Logger;
  private readonly keyFile: string;
  private readonly rotationMs: number;
  private x: XfrmOps | undefined;
  private local: LocalNode | undefined;
  private mtu: number | undefined;
  /** Key index → key, for every index whose states are wanted (current + previous during rotation). */
  private readonly keys = new Map<number, IpsecKey>();
  private current: IpsecKey | undefined;
  private currentText = '';
  private previousIndex: number | undefined;
  private rotation: Rotation | undefined;
  /** Indexes found in the kernel at start without a key for them: kept (not rebuilt) until reclaim. */
  private readonly retained = new Set<number>();
  private retainedSince = 0;
  private readonly peers = new Map<string, PeerRecord>();
  /** Outbound SAs this agent installed or adopted: one missing later was deleted behind its back. */
  private readonly programmedOut = new Set<string>();
  private readonly epochFile: string;
  private pruned = false;
  private keyError: string | undefined;
  private driftRepairs = 0;
  private seqWarned = false;
  private lastDriftError: string | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private keyTimer: NodeJS.Timeout | undefined;
  private driftTimer: NodeJS.Timeout | undefined;
  private reclaimTimer: NodeJS.Timeout | undefined;
  private repairTimer: NodeJS.Timeout | undefined;
  private watch: XfrmWatch | undefined;
  private closed = false;
  private readonly materialListeners = new Set<(m: LocalMaterial) => void>();
  private readonly reprogramListeners = new Set<(names: readonly string[]) => void>();
  private readonly steeringListeners = new Set<(s: Steering) => void>();
  private metrics:
    | {
        repairs: Counter<'op'>;
        keyFileErrors: Counter;
      }
    | undefined;

  constructor(
    private readonly config: AgentConfig,
    logger: Logger,
    private readonly options: IpsecBackendOptions = {},
    /** Where refused key files and high sequence numbers are reported as Warning Events on this Node. */
    private readonly events?: EventRecorder,
  ) {
    this.log = logger.child({ component: 'backend-ipsec' });
    const section = backendSection(config, ipsecConfig);
    this.keyFile = options.keyFile ?? section.keyFile;
    this.rotationMs = options.keyRotationDurationMs ?? parseDuration(section.keyRotationDuration);
    this.epochFile = join(config.stateDir, 'ipsec', 'epoch');
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  async init(): Promise<readonly string[]> {
    const nodeId = this.config.nodeId;
    if (!Number.isInteger(nodeId) || nodeId < 1 || nodeId > 0xffff) {
      throw new IpsecConfigError(
        'nodeId',
        `IPsec needs a cluster-unique node ID 1..65535 (published as veil.io/node-id, it goes into the mark and the SPI); ` +
          `got ${nodeId} (the agent allocates one through Kubernetes Leases when nodeId is 0; without the API it must be set)`,
      );
    }
    const bootId = this.options.bootId ?? (await readBootId(this.options.bootIdPath ?? DEFAULT_BOOT_ID_PATH));
    const bp = bootIdProblem(bootId);
    if (bp) throw new IpsecConfigError('bootId', bp);
    const tunnel = await this.tunnelIPs();
    if (!tunnel.ipv4 && !tunnel.ipv6) {
      throw new IpsecConfigError(
        'tunnelIPs',
        'no tunnel address: no default route to take it from; set VEIL_IPSEC_TUNNEL_IPS=<ipv4>[,<ipv6>]',
      );
    }
    this.local = { nodeId, ipv4: tunnel.ipv4, ipv6: tunnel.ipv6, bootId, epoch: await this.readEpoch() };
    const text = await this.readKeyText();
    const key = parseKeyFile(text, this.keyFile);
    this.current = key;
    this.currentText = text;
    this.keys.set(key.spi, key);

    this.x = this.options.xfrm ?? XfrmClient.open(this.options.netns ? { netns: this.options.netns } : {});
    await this.serial(async () => {
      const x = this.client();
      // Fail-closed before anything else: the BLOCK (and IN/FWD) policies.
      const dump = await dumpXfrm(x);
      await applyPlan(
        x,
        planDiff({ states: [], policies: basePolicies() }, dump, (o) => o.kind === 'base'),
      );
      // Adopt states of other key indexes a previous agent left (e.g. mid-rotation): keep them
      // until they are reclaimed like any previous index.
      for (const s of dump.states) if (isOurState(s) && stateKeyIndex(s) !== key.spi) this.retained.add(stateKeyIndex(s));
      for (const s of dump.states) if (isOurState(s) && s.mark) this.programmedOut.add(stateId(s));
      if (this.retained.size > 0) {
        this.retainedSince = Date.now();
        this.log.info(
          { indexes: [...this.retained], current: key.spi },
          'adopted states of other key indexes; they are reclaimed after keyRotationDuration',
        );
      }
      await this.probeEsp(x, key);
    });
    this.mtu = await this.innerMtu(key);
    this.startTimers();
    this.scheduleReclaim();
    if (this.options.watchNotifications ?? this.options.xfrm === undefined) {
      this.watch = watchXfrm(
        this.options.netns ? { netns: this.options.netns } : {},
        (what) => {
          // Someone (possibly this backend) deleted, updated or flushed something: dump again.
          this.view = undefined;
          this.scheduleRepair(what);
        },
        (err) => this.log.error({ err: err.message }, 'XFRM notification socket failed; the periodic compare still runs'),
      );
    }
    this.log.info({ nodeId, tunnel: formatTunnelIPs(tunnel), keyIndex: key.spi, mtu: this.mtu }, 'IPsec backend ready');
    // Peers are known by node ID in the kernel, not by name; prune() removes what no peer claims.
    return [];
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of [this.keyTimer, this.driftTimer, this.reclaimTimer, this.repairTimer]) if (t) clearInterval(t);
    this.watch?.close();
    this.watch = undefined;
    await this.chain.catch(() => undefined);
    this.x?.close();
    this.x = undefined;
  }

  // ---- peers ----------------------------------------------------------------------------------

  async upsertPeer(peer: PeerNode): Promise<PeerProgramResult> {
    const rec = this.peerRecord(peer);
    return this.serial(async () => {
      const x = this.client();
      const prior = this.peers.get(peer.name);
      const objects = peerObjects(this.localNode(), rec, [...this.keys.values()]);
      const dump = await this.kernelView(x);
      const owners = new Set([rec.nodeId, ...(prior && prior.nodeId !== rec.nodeId ? [prior.nodeId] : [])]);
      const plan = planDiff(
        objects,
        dump,
        (o) => o.kind === 'peer' && owners.has(o.nodeId),
        (o) => this.isRetained(o),
      );
      this.peers.set(peer.name, rec);
      let changes: XfrmChange[];
      if (this.lostOutbound(plan)) {
        await this.bumpEpoch();
        changes = await this.syncAll();
      } else {
        changes = await this.write(plan);
      }
      if (changes.length > 0) this.log.debug({ peer: peer.name, changes: changes.length }, 'programmed IPsec peer');
      return { keyIndex: this.outIndex(rec) };
    });
  }

  async removePeer(name: string): Promise<void> {
    await this.serial(async () => {
      const rec = this.peers.get(name);
      if (!rec) return;
      await this.deleteNodeIds(new Set([rec.nodeId]));
      this.peers.delete(name);
    });
  }

  async prune(keep: ReadonlySet<string>): Promise<readonly string[]> {
    return this.serial(async () => {
      const removed: string[] = [];
      for (const name of [...this.peers.keys()]) {
        if (!keep.has(name)) {
          removed.push(name);
          this.peers.delete(name);
        }
      }
      // Every node ID no remaining peer has: departed peers and whatever an earlier agent left.
      const live = new Set([...this.peers.values()].map((p) => p.nodeId));
      const dump = await this.freshView(this.client());
      const stale = new Set<number>();
      for (const s of dump.states) if (isOurState(s)) this.addIfStale(stateOwner(s), live, stale);
      for (const p of dump.policies)
        if (isOurPolicy(p) && p.mark && (p.mark.value & 0x0f00) === MARK_ENCRYPT && policyKeyIndex(p) !== undefined) {
          this.addIfStale({ kind: 'peer', nodeId: p.mark.value >>> NODE_ID_SHIFT }, live, stale);
        }
      if (stale.size > 0) await this.deleteNodeIds(stale);
      this.pruned = true;
      return removed;
    });
  }

  // ---- datapath + material --------------------------------------------------------------------

  steering(): Steering {
    return {
      kind: 'mark',
      value: MARK_ENCRYPT,
      mask: MARK_MASK_PEER,
      keyIndexShift: KEY_INDEX_SHIFT,
      nodeIdShift: NODE_ID_SHIFT,
      ...(this.mtu ? { mtu: this.mtu } : {}),
    };
  }

  localMaterial(): LocalMaterial {
    const local = this.localNode();
    return {
      [BOOT_ID_ANNOTATION]: local.bootId,
      [TUNNEL_IPS_ANNOTATION]: formatTunnelIPs(local),
      [KEY_INDEX_ANNOTATION]: String(this.currentKey().spi),
      [EPOCH_ANNOTATION]: String(local.epoch),
    };
  }

  onMaterialChange(listener: (material: LocalMaterial) => void): () => void {
    this.materialListeners.add(listener);
    return () => this.materialListeners.delete(listener);
  }

  /** The steering's MTU changes when a rotation changes the algorithm (and so the ESP overhead). */
  onSteeringChange(listener: (steering: Steering) => void): () => void {
    this.steeringListeners.add(listener);
    return () => this.steeringListeners.delete(listener);
  }

  onReprogramPeers(listener: (peerNames: readonly string[]) => void): () => void {
    this.reprogramListeners.add(listener);
    return () => this.reprogramListeners.delete(listener);
  }

  // ---- key file + rotation --------------------------------------------------------------------

  /**
   * Re-reads the key file. A new key index starts a rotation: inbound (and outbound, still
   * unused) states for the new index go in for every peer first, then "ready for n" is published;
   * each peer's traffic switches (its mark's key index) once that peer reports n too; the old
   * index is reclaimed after keyRotationDuration once every peer is on n. A file that does not
   * parse, or new key bytes under the same index, is refused: the running keys stay in use and
   * the error shows in status and metrics. Returns whether a rotation started.
   */
  async reloadKeyFile(): Promise<boolean> {
    let text: string;
    try {
      text = await this.readKeyText();
    } catch (e) {
      this.refuseKeyFile(`cannot read ${this.keyFile}: ${errText(e)}`);
      return false;
    }
    if (text === this.currentText && this.keyError === undefined) return false;
    let key: IpsecKey;
    try {
      key = parseKeyFile(text, this.keyFile);
    } catch (e) {
      this.refuseKeyFile(e instanceof IpsecKeyFileError ? e.message : errText(e));
      return false;
    }
    const cur = this.currentKey();
    if (key.spi === cur.spi) {
      if (!key.material.equals(cur.material) || JSON.stringify(key.algorithm) !== JSON.stringify(cur.algorithm)) {
        this.refuseKeyFile(
          `key index ${key.spi} is in use with another key; a new key needs a new index (next: ${cur.spi === MAX_KEY_INDEX ? MIN_KEY_INDEX : cur.spi + 1})`,
        );
        return false;
      }
      this.currentText = text;
      if (this.keyError) this.log.info({ keyIndex: key.spi }, 'key file is valid again');
      this.keyError = undefined;
      return false;
    }
    if (this.keys.has(key.spi) || this.retained.has(key.spi)) {
      this.refuseKeyFile(`key index ${key.spi} is still in use by the previous rotation; wait until it is reclaimed`);
      return false;
    }
    await this.serial(async () => {
      await this.probeEsp(this.client(), key);
      this.keys.set(key.spi, key);
      this.previousIndex = cur.spi;
      this.current = key;
      this.currentText = text;
      this.keyError = undefined;
      this.rotation = { from: cur.spi, to: key.spi, startedAt: Date.now() };
      // Step 1: the new inbound states for every peer before anyone is told.
      await this.syncAll();
    });
    const mtu = await this.innerMtu(key);
    if (mtu !== this.mtu) {
      // Another algorithm, another ESP overhead: the datapath's MTU check follows.
      this.mtu = mtu;
      for (const l of this.steeringListeners) l(this.steering());
    }
    this.log.info(
      { from: cur.spi, to: key.spi, peers: this.peers.size },
      'IPsec key rotation: new states installed, publishing ready index',
    );
    // Step 2: publish "ready for n". Step 3 happens per peer in upsertPeer (outIndex).
    for (const l of this.materialListeners) l(this.localMaterial());
    this.emitReprogram();
    this.scheduleReclaim();
    return true;
  }

  /** Step 4: drops previous indexes once keyRotationDuration passed and every peer is on the current one. */
  async reclaim(now = Date.now()): Promise<number[]> {
    const cur = this.currentKey().spi;
    const since = this.rotation?.startedAt ?? this.retainedSince;
    const old = [...this.keys.keys(), ...this.retained].filter((i) => i !== cur);
    if (old.length === 0) return [];
    if (now - since < this.rotationMs) return [];
    const waiting = [...this.peers.values()].filter((p) => p.readyIndex !== cur).map((p) => p.name);
    if (waiting.length > 0) {
      this.log.info({ waitingFor: waiting, keyIndex: cur }, 'IPsec key rotation: old index kept until these peers are ready');
      return [];
    }
    await this.serial(async () => {
      for (const i of old) this.keys.delete(i);
      this.retained.clear();
      this.rotation = undefined;
      await this.syncAll();
    });
    this.log.info({ reclaimed: old, keyIndex: cur }, 'IPsec key rotation: old states reclaimed');
    return old;
  }

  // ---- drift ----------------------------------------------------------------------------------

  /**
   * Compares the kernel with what this backend wants (base policies, every peer's states and
   * policies) and writes the difference: objects deleted or changed behind the agent's back come
   * back. Counted in `veil_ipsec_xfrm_repairs_total` and logged. Returns the writes.
   */
  async repairDrift(): Promise<readonly XfrmChange[]> {
    return this.serial(async () => {
      const changes = await this.syncAll();
      if (changes.length > 0) {
        this.driftRepairs += changes.length;
        for (const c of changes) this.metrics?.repairs.inc({ op: c.op });
        this.log.warn({ repaired: changes }, 'XFRM state drifted; repaired');
      }
      return changes;
    });
  }

  // ---- status + metrics -----------------------------------------------------------------------

  async status(): Promise<BackendStatus> {
    const errors: string[] = [];
    if (this.keyError) errors.push(`key file refused (running keys kept): ${this.keyError}`);
    if (this.lastDriftError) errors.push(`drift repair: ${this.lastDriftError}`);
    let dump: XfrmObjects = { states: [], policies: [] };
    try {
      if (this.x) dump = await dumpXfrm(this.x);
    } catch (e) {
      errors.push(`xfrm dump: ${errText(e)}`);
    }
    const ours = dump.states.filter(isOurState);
    const byNode = new Map<number, XfrmState[]>();
    let highest = 0n;
    for (const s of ours) {
      const o = stateOwner(s);
      if (o.kind === 'peer') byNode.set(o.nodeId, [...(byNode.get(o.nodeId) ?? []), s]);
      const q = seqOf(s);
      if (q > highest) highest = q;
    }
    if (highest >= SEQ_WARN_THRESHOLD) {
      errors.push(`highest ESP sequence number ${highest} is past 2^62: rotate the key`);
      if (!this.seqWarned) {
        this.seqWarned = true;
        this.events?.record({
          node: this.config.nodeName,
          type: 'Warning',
          reason: 'IPsecSequenceNumberHigh',
          message: `highest ESP sequence number ${highest} is past 2^62: rotate the key`,
        });
      }
    }
    const peers: BackendPeerStatus[] = [...this.peers.values()].map((p) => {
      const states = byNode.get(p.nodeId) ?? [];
      const out = states.filter((s) => s.mark !== undefined);
      const seq = states.reduce((m, s) => (seqOf(s) > m ? seqOf(s) : m), 0n);
      const families = commonFamilies(this.localNode(), p)
        .map((f) => `v${f}`)
        .join('+');
      return {
        name: p.name,
        keyIndex: this.outIndex(p),
        detail: `${states.length} states (${out.length} out), ${families}, peer ready for index ${p.readyIndex}`,
        stats: {
          nodeId: p.nodeId,
          states: states.length,
          highestSeq: seq.toString(),
          packets: Number(states.reduce((n, s) => n + (s.current?.packets ?? 0n), 0n)),
        },
      };
    });
    let xfrmStat: XfrmProcStats = {};
    try {
      xfrmStat = await this.readXfrmStat();
    } catch (e) {
      errors.push(`xfrm_stat: ${errText(e)}`);
    }
    const cur = this.current;
    return {
      backend: 'ipsec',
      driver: 'xfrm',
      ...(cur ? { keyIndex: cur.spi } : {}),
      peers,
      errors,
      details: {
        nodeId: this.local?.nodeId,
        tunnelIPs: this.local ? formatTunnelIPs(this.local) : undefined,
        bootId: this.local?.bootId,
        keysInUse: [...this.keys.values()].map((k) => ({
          index: k.spi,
          algorithm: k.algorithm.kind === 'aead' ? k.algorithm.name : `${k.algorithm.auth}+${k.algorithm.enc}`,
          fingerprint: k.fingerprint,
          perTunnel: k.perTunnel,
        })),
        retainedIndexes: [...this.retained],
        currentIndex: cur?.spi,
        previousIndex: this.previousIndex,
        rotation: this.rotationStatus(),
        states: {
          total: ours.length,
          out: ours.filter((s) => s.mark !== undefined).length,
          in: ours.filter((s) => s.mark === undefined).length,
        },
        policies: dump.policies.filter(isOurPolicy).length,
        highestSeq: highest.toString(),
        xfrmStat,
        driftRepairs: this.driftRepairs,
        mtu: this.mtu,
      } satisfies IpsecStatusDetails,
    };
  }

  registerMetrics(registry: Registry): void {
    const repairs = new Counter({
      name: 'veil_ipsec_xfrm_repairs_total',
      help: 'XFRM writes that repaired drift (objects changed or removed behind the agent)',
      labelNames: ['op'] as const,
      registers: [registry],
    });
    const keyFileErrors = new Counter({
      name: 'veil_ipsec_key_file_errors_total',
      help: 'Key file loads refused (the running keys stayed in use)',
      registers: [registry],
    });
    this.metrics = { repairs, keyFileErrors };
    new Gauge({
      name: 'veil_ipsec_key_index',
      help: 'Key index in use: current, and previous while a rotation is in progress',
      labelNames: ['which'] as const,
      registers: [registry],
      collect: () => {
        const g = registry.getSingleMetric('veil_ipsec_key_index') as Gauge<'which'>;
        g.reset();
        if (this.current) g.set({ which: 'current' }, this.current.spi);
        if (this.rotation) g.set({ which: 'previous' }, this.rotation.from);
      },
    });
    new Gauge({
      name: 'veil_ipsec_rotation_peers_ready',
      help: 'Peers reporting the current key index (during and after a rotation)',
      registers: [registry],
      collect: () => {
        const cur = this.current?.spi;
        (registry.getSingleMetric('veil_ipsec_rotation_peers_ready') as Gauge).set(
          [...this.peers.values()].filter((p) => p.readyIndex === cur).length,
        );
      },
    });
    new Gauge({
      name: 'veil_ipsec_rotation_in_progress',
      help: '1 while a key rotation keeps the previous index installed, else 0',
      registers: [registry],
      collect: () => {
        (registry.getSingleMetric('veil_ipsec_rotation_in_progress') as Gauge).set(this.rotation ? 1 : 0);
      },
    });
    new Gauge({
      name: 'veil_ipsec_rotation_peers_waiting',
      help: 'Peers not yet reporting the current key index (the previous index is kept until 0)',
      registers: [registry],
      collect: () => {
        const cur = this.current?.spi;
        (registry.getSingleMetric('veil_ipsec_rotation_peers_waiting') as Gauge).set(
          [...this.peers.values()].filter((p) => p.readyIndex !== cur).length,
        );
      },
    });
    new Gauge({
      name: 'veil_ipsec_rotation_reclaim_seconds',
      help: 'Seconds until the previous key index may be reclaimed (keyRotationDuration); 0 when no rotation is in progress',
      registers: [registry],
      collect: () => {
        (registry.getSingleMetric('veil_ipsec_rotation_reclaim_seconds') as Gauge).set(
          (this.rotationStatus()?.reclaimInMs ?? 0) / 1000,
        );
      },
    });
    new Gauge({
      name: 'veil_ipsec_xfrm_objects',
      help: "This backend's XFRM states and policies in the kernel, by kind and direction",
      labelNames: ['kind', 'dir'] as const,
      registers: [registry],
      collect: async () => {
        const g = registry.getSingleMetric('veil_ipsec_xfrm_objects') as Gauge<'kind' | 'dir'>;
        if (!this.x) return;
        try {
          const d = await dumpXfrm(this.x);
          const states = d.states.filter(isOurState);
          g.set({ kind: 'state', dir: 'out' }, states.filter((s) => s.mark !== undefined).length);
          g.set({ kind: 'state', dir: 'in' }, states.filter((s) => s.mark === undefined).length);
          const pols = d.policies.filter(isOurPolicy);
          for (const dir of ['out', 'in', 'fwd'] as const)
            g.set({ kind: 'policy', dir }, pols.filter((p) => p.dir === dir).length);
        } catch {
          // The dump failed; status() reports it.
        }
      },
    });
    new Gauge({
      name: 'veil_ipsec_highest_seq',
      help: "Highest ESP sequence number of any of this node's SAs (ESN, 64-bit; status warns past 2^62)",
      registers: [registry],
      collect: async () => {
        if (!this.x) return;
        try {
          let highest = 0n;
          for (const s of (await this.x.listStates()).filter(isOurState)) if (seqOf(s) > highest) highest = seqOf(s);
          (registry.getSingleMetric('veil_ipsec_highest_seq') as Gauge).set(Number(highest));
        } catch {
          // The dump failed; status() reports it.
        }
      },
    });
    new Gauge({
      name: 'veil_ipsec_xfrm_errors',
      help: 'XFRM error counters from /proc/net/xfrm_stat, by type',
      labelNames: ['type'] as const,
      registers: [registry],
      collect: async () => {
        const g = registry.getSingleMetric('veil_ipsec_xfrm_errors') as Gauge<'type'>;
        try {
          for (const [type, v] of Object.entries(await this.readXfrmStat())) g.set({ type }, v);
        } catch {
          // No xfrm_stat (kernel without XFRM statistics): nothing to report.
        }
      },
    });
  }

  // ---- internals ------------------------------------------------------------------------------

  private client(): XfrmOps {
    if (!this.x) throw new IpsecError('IPsec backend is not initialised (call init) or was closed');
    return this.x;
  }

  private localNode(): LocalNode {
    if (!this.local) throw new IpsecError('IPsec backend is not initialised (call init)');
    return this.local;
  }

  private currentKey(): IpsecKey {
    if (!this.current) throw new IpsecError('IPsec backend is not initialised (call init)');
    return this.current;
  }

  /** Runs XFRM work one at a time (peer updates, rotation and repair read-modify-write the kernel). */
  private serial<T>(f: () => Promise<T>): Promise<T> {
    const run = this.chain.then(f, f);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async readKeyText(): Promise<string> {
    return readFile(this.keyFile, 'utf8');
  }

  private refuseKeyFile(reason: string): void {
    const fresh = this.keyError !== reason;
    this.keyError = reason;
    if (fresh) {
      this.metrics?.keyFileErrors.inc();
      this.log.error(
        { keyFile: this.keyFile, reason, keyIndex: this.current?.spi },
        'IPsec key file refused; the running keys stay in use',
      );
      this.events?.record({
        node: this.config.nodeName,
        type: 'Warning',
        reason: 'IPsecKeyFileRefused',
        message: `${reason} (key index ${this.current?.spi ?? '?'} stays in use)`,
      });
    }
  }

  private async tunnelIPs(): Promise<TunnelIPs> {
    if (this.options.tunnelIPs) return this.options.tunnelIPs;
    const env = process.env.VEIL_IPSEC_TUNNEL_IPS;
    if (env) {
      const t = parseTunnelIPs(env);
      if (typeof t === 'string') throw new IpsecConfigError('VEIL_IPSEC_TUNNEL_IPS', t);
      return t;
    }
    return discoverTunnelIPs(this.options.netns);
  }

  private async innerMtu(key: IpsecKey): Promise<number> {
    const local = this.localNode();
    let mtu = Infinity;
    for (const [f, ip] of [
      [4, local.ipv4],
      [6, local.ipv6],
    ] as [Family, string | undefined][]) {
      if (!ip) continue;
      const under =
        this.options.underlayMtu ?? (await deviceMtuOf(ip, this.options.netns).catch(() => undefined)) ?? DEFAULT_UNDERLAY_MTU;
      mtu = Math.min(mtu, espInnerMtu(under, key.algorithm, f));
    }
    return Math.max(68, mtu === Infinity ? espInnerMtu(DEFAULT_UNDERLAY_MTU, key.algorithm, 4) : mtu);
  }

  /**
   * Adds and removes one throw-away state (TEST-NET addresses) with the key's algorithm, so a
   * kernel without ESP or the cipher is reported at start as IpsecNotSupportedError instead of
   * at the first peer.
   */
  private async probeEsp(x: XfrmOps, key: IpsecKey): Promise<void> {
    const probe: XfrmState = {
      src: '192.0.2.1',
      dst: '192.0.2.2',
      spi: 0xffffff00 + key.spi,
      reqid: VEIL_REQID - 1,
      mode: 'tunnel',
      ...xfrmTransform(
        key,
        deriveDirectionalKey(
          key,
          { ip: '192.0.2.1', bootId: this.localNode().bootId, epoch: 0 },
          { ip: '192.0.2.2', bootId: this.localNode().bootId, epoch: 0 },
        ),
      ),
      esn: true,
      replayWindow: 32,
    };
    await applyPlan(x, {
      addStates: [probe],
      replaceStates: [],
      deleteStates: [],
      addPolicies: [],
      updatePolicies: [],
      deletePolicies: [],
    });
    await x.deleteState({ dst: probe.dst, spi: probe.spi });
  }

  private peerRecord(peer: PeerNode): PeerRecord {
    const ann = peer.backend;
    const bootId = ann[BOOT_ID_ANNOTATION];
    const tunnel = ann[TUNNEL_IPS_ANNOTATION];
    const ready = ann[KEY_INDEX_ANNOTATION];
    const missing = [BOOT_ID_ANNOTATION, TUNNEL_IPS_ANNOTATION, KEY_INDEX_ANNOTATION, EPOCH_ANNOTATION].find(
      (k) => ann[k] === undefined,
    );
    if (missing !== undefined || bootId === undefined || tunnel === undefined || ready === undefined) {
      throw new IpsecPeerError(peer.name, `misses annotation ${missing ?? BOOT_ID_ANNOTATION}`);
    }
    const t = parseTunnelIPs(tunnel);
    if (typeof t === 'string') throw new IpsecPeerError(peer.name, `${TUNNEL_IPS_ANNOTATION}: ${t}`);
    const epoch = Number(ann[EPOCH_ANNOTATION]);
    return { name: peer.name, nodeId: peer.nodeId, ipv4: t.ipv4, ipv6: t.ipv6, bootId, epoch, readyIndex: Number(ready) };
  }

  /** The key index to send to `p` with: the one it reports ready if we have it, else ours. */
  private outIndex(p: PeerRecord): number {
    if (this.keys.has(p.readyIndex) || this.retained.has(p.readyIndex)) return p.readyIndex;
    return this.currentKey().spi;
  }

  private isRetained(o: XfrmState | XfrmPolicy): boolean {
    if (this.retained.size === 0) return false;
    const i = 'spi' in o ? stateKeyIndex(o) : policyKeyIndex(o);
    return i !== undefined && this.retained.has(i);
  }

  private addIfStale(o: Owner, live: ReadonlySet<number>, stale: Set<number>): void {
    if (o.kind === 'peer' && !live.has(o.nodeId)) stale.add(o.nodeId);
  }

  private async deleteNodeIds(ids: ReadonlySet<number>): Promise<void> {
    const x = this.client();
    await this.write(
      planDiff({ states: [], policies: [] }, await this.kernelView(x), (o) => o.kind === 'peer' && ids.has(o.nodeId)),
    );
  }

  /** Full compare-and-write: base policies plus every known peer (caller holds the chain). */
  private async syncAll(): Promise<XfrmChange[]> {
    const plan = await this.planAll();
    if (!this.lostOutbound(plan)) return planSize(plan) === 0 ? [] : this.write(plan);
    await this.bumpEpoch();
    return this.write(await this.planAll());
  }

  private async planAll(): Promise<XfrmPlan> {
    const x = this.client();
    const keys = [...this.keys.values()];
    const states: XfrmState[] = [];
    const policies: XfrmPolicy[] = [...basePolicies()];
    for (const p of this.peers.values()) {
      const o = peerObjects(this.localNode(), p, keys);
      states.push(...o.states);
      policies.push(...o.policies);
    }
    const known = new Set([...this.peers.values()].map((p) => p.nodeId));
    // Before the initial prune, objects of node IDs no peer claimed yet are left for prune().
    return planDiff(
      { states, policies },
      await this.freshView(x),
      (o) => o.kind === 'base' || known.has(o.nodeId) || this.pruned,
      (o) => this.isRetained(o),
    );
  }

  /**
   * The kernel's SAD/SPD as last dumped, plus this backend's own writes since: `upsertPeer` and
   * peer removals diff against it instead of dumping everything on every call. Dumped again when
   * undefined: after a failed write, on every XFRM notification (a deletion, update or flush by
   * anyone), and by every full compare (`syncAll`: the periodic drift check, notification repairs,
   * rotation, reclaim) and `prune`. Caller holds the chain.
   */
  private view: XfrmObjects | undefined;
  /** Dumps taken for {@link view} (tests check that upserts reuse it). */
  viewDumps = 0;

  private async kernelView(x: XfrmOps): Promise<XfrmObjects> {
    return this.view ?? this.freshView(x);
  }

  private async freshView(x: XfrmOps): Promise<XfrmObjects> {
    this.view = undefined;
    const dump = await dumpXfrm(x);
    this.viewDumps++;
    this.view = dump;
    return dump;
  }

  /** applyPlan, keeping track of the outbound SAs in the kernel and of the cached view. */
  private async write(plan: XfrmPlan): Promise<XfrmChange[]> {
    const before = this.view;
    let changes: XfrmChange[];
    try {
      changes = await applyPlan(this.client(), plan);
    } catch (e) {
      // Part of the plan may be written: only a new dump knows what the kernel has now.
      this.view = undefined;
      throw e;
    }
    // Unless a notification invalidated it meanwhile, the view now has what was written.
    if (before !== undefined && this.view === before) this.view = applyPlanToView(before, plan);
    for (const s of [...plan.addStates, ...plan.replaceStates]) if (s.mark) this.programmedOut.add(stateId(s));
    for (const s of plan.deleteStates) this.programmedOut.delete(stateId(s));
    return changes;
  }

  /**
   * True when the plan re-adds an outbound SA this agent had installed: it was deleted behind
   * its back, and the peer's inbound SA has seen its sequence numbers. Re-adding it with the same
   * key would restart at 1 (refused as replays by the peer), so the node moves to a new key epoch.
   */
  private lostOutbound(plan: XfrmPlan): boolean {
    return plan.addStates.some((s) => s.mark !== undefined && this.programmedOut.has(stateId(s)));
  }

  /** New key epoch: every key this node derives changes; peers follow when they see the annotation. */
  private async bumpEpoch(): Promise<void> {
    const local = this.localNode();
    const epoch = (local.epoch + 1) >>> 0;
    await mkdir(dirname(this.epochFile), { recursive: true });
    await writeFile(`${this.epochFile}.tmp`, `${epoch}\n`, { mode: 0o600 });
    await rename(`${this.epochFile}.tmp`, this.epochFile);
    this.local = { ...local, epoch };
    this.log.warn(
      { epoch },
      'an outbound SA was removed behind the agent; moving to a new key epoch (peers re-key when they see it)',
    );
    for (const l of this.materialListeners) l(this.localMaterial());
  }

  private async readEpoch(): Promise<number> {
    let text: string;
    try {
      text = await readFile(this.epochFile, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw new IpsecConfigError(`epoch file ${this.epochFile}`, errText(e));
    }
    const p = epochProblem(text.trim());
    if (p) throw new IpsecConfigError(`epoch file ${this.epochFile}`, p);
    return Number(text.trim());
  }

  private emitReprogram(): void {
    const names = [...this.peers.keys()];
    if (names.length === 0) return;
    for (const l of this.reprogramListeners) l(names);
  }

  private rotationStatus(): IpsecStatusDetails['rotation'] {
    const r = this.rotation;
    if (!r) return undefined;
    const cur = this.current?.spi;
    const peers = [...this.peers.values()];
    return {
      from: r.from,
      to: r.to,
      peersReady: peers.filter((p) => p.readyIndex === cur).length,
      peersTotal: peers.length,
      waitingFor: peers.filter((p) => p.readyIndex !== cur).map((p) => p.name),
      reclaimInMs: Math.max(0, r.startedAt + this.rotationMs - Date.now()),
    };
  }

  private async readXfrmStat(): Promise<XfrmProcStats> {
    // /proc/net is the reading process's netns: read another netns' counters from inside it.
    if (this.options.xfrmStatPath) return readXfrmStat(this.options.xfrmStatPath);
    if (!this.options.netns) return readXfrmStat();
    const { stdout } = await promisify(execFile)('ip', ['netns', 'exec', this.options.netns, 'cat', '/proc/net/xfrm_stat']);
    return parseXfrmStat(stdout);
  }

  private startTimers(): void {
    const keyMs = this.options.keyPollIntervalMs ?? 5000;
    this.keyTimer = setInterval(() => {
      if (this.closed) return;
      this.reloadKeyFile().catch((e: unknown) => this.log.error({ err: errText(e) }, 'IPsec key reload failed'));
    }, keyMs);
    this.keyTimer.unref();
    const driftMs = this.options.driftIntervalMs ?? 30_000;
    if (driftMs > 0) {
      this.driftTimer = setInterval(() => {
        if (this.closed) return;
        this.repairDrift().then(
          () => (this.lastDriftError = undefined),
          (e: unknown) => {
            this.lastDriftError = errText(e);
            this.log.error({ err: errText(e) }, 'XFRM drift repair failed');
          },
        );
      }, driftMs);
      this.driftTimer.unref();
    }
  }

  /** A deletion/update/flush was announced: compare and repair soon (our own writes cause no-op compares). */
  private scheduleRepair(what: string): void {
    if (this.closed || this.repairTimer) return;
    this.repairTimer = setTimeout(() => {
      this.repairTimer = undefined;
      if (this.closed) return;
      this.repairDrift().then(
        (changes) => {
          this.lastDriftError = undefined;
          if (changes.length > 0)
            this.log.info({ trigger: what, repaired: changes.length }, 'repaired XFRM state after a notification');
        },
        (e: unknown) => {
          this.lastDriftError = errText(e);
          this.log.error({ err: errText(e), trigger: what }, 'XFRM drift repair failed');
        },
      );
    }, this.options.repairDebounceMs ?? 200);
    this.repairTimer.unref();
  }

  private scheduleReclaim(): void {
    if (this.reclaimTimer) return;
    const every = Math.max(50, Math.min(this.rotationMs, 5000));
    this.reclaimTimer = setInterval(() => {
      if (this.closed) return;
      const pending = [...this.keys.keys(), ...this.retained].some((i) => i !== this.current?.spi);
      if (!pending) return;
      this.reclaim().catch((e: unknown) => this.log.error({ err: errText(e) }, 'IPsec key reclaim failed'));
    }, every);
    this.reclaimTimer.unref();
  }
}
