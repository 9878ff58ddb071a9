import { errorMessage, VeilAgentError } from '../errors.js';
import type { Logger } from '../observability/logger.js';

/**
 * Highest node ID. IDs are 16 bits because the IPsec mark carries the remote node in bits 16..31
 * (`0x0E00 | keyIndex << 12 | nodeId << 16`) and the SPI is `nodeId << 8 | keyIndex`; 0 means
 * "none", so a cluster has at most 65,535 IDs.
 */
export const MAX_NODE_ID = 0xffff;

/** One claimed node ID (a Lease `veil-node-id-<id>` on Kubernetes). */
export interface NodeIdClaim {
  readonly id: number;
  /** The node name holding it. */
  readonly holder: string;
  /** The Node UID the claim is tied to (its owner reference), if any. */
  readonly ownerUid?: string;
  /** Opaque version of the stored claim, a precondition for deletes and updates. */
  readonly version: string;
}

/** A Node as the allocator needs it. */
export interface NodeIdNodeInfo {
  readonly uid: string;
  /** Its published `veil.io/node-id`, when a positive integer. */
  readonly annotatedId?: number;
}

/**
 * Where claims live. Every write is conditional: `create` fails with 'taken' when the ID is
 * claimed already (HTTP 409 on Kubernetes), `delete`/`setOwner` only act on the version read.
 */
export interface NodeIdStore {
  /** Every claim, in any order. */
  listClaims(): Promise<NodeIdClaim[]>;
  /** Every Node by name. Must be read AFTER `listClaims` (see {@link NodeIdAllocator.claim}). */
  listNodes(): Promise<Map<string, NodeIdNodeInfo>>;
  /** One claim by ID, undefined when absent. */
  getClaim(id: number): Promise<NodeIdClaim | undefined>;
  createClaim(id: number, holder: string, ownerUid: string): Promise<NodeIdClaim | 'taken'>;
  /** Deletes the claim if it is still at `claim.version`; false when it changed or is gone. */
  deleteClaim(claim: NodeIdClaim): Promise<boolean>;
  /** Points the claim at a new owner UID if still at `claim.version`; false when it changed or is gone. */
  setOwner(claim: NodeIdClaim, ownerUid: string): Promise<boolean>;
}

/** Another node already holds the node ID this one was configured with. */
export class NodeIdConflictError extends VeilAgentError {
  override name = 'NodeIdConflictError';
  /** The configuration key at fault. */
  readonly field = 'nodeId';
  constructor(
    readonly nodeId: number,
    readonly holder: string,
    readonly how: 'claimed' | 'annotated',
  ) {
    super(
      `nodeId: node ID ${nodeId} is already ${how === 'claimed' ? 'claimed' : 'published (veil.io/node-id)'} by node ${holder}; ` +
        'node IDs must be unique in the cluster (set nodeId 0 to have one allocated)',
    );
  }
}

/** All 65,535 IDs are in use. */
export class NodeIdExhaustedError extends VeilAgentError {
  override name = 'NodeIdExhaustedError';
  readonly field = 'nodeId';
  constructor(readonly inUse: number) {
    super(`nodeId: no free node ID left (${inUse} of ${MAX_NODE_ID} in use by live nodes)`);
  }
}

/** The allocation cannot proceed yet (e.g. this node's Node object does not exist); retried. */
export class NodeIdAllocationError extends VeilAgentError {
  override name = 'NodeIdAllocationError';
}

/**
 * The store is not there at all (e.g. an API server that does not serve Leases). An explicit
 * `nodeId` is then used unclaimed (peers still refuse duplicates); 0 cannot be allocated.
 */
export class NodeIdStoreUnavailableError extends NodeIdAllocationError {
  override name = 'NodeIdStoreUnavailableError';
}

/** What {@link NodeIdAllocator.claim} did. */
export interface NodeIdResult {
  readonly id: number;
  /** 'kept': this node already held it (a restart); 'claimed': newly taken. */
  readonly how: 'kept' | 'claimed';
  /** Claims of deleted Nodes that this call removed. */
  readonly reclaimed: readonly number[];
  /** Other claims of this node that were released (an explicit ID changed). */
  readonly released: readonly number[];
}

/** FNV-1a, 32 bit: spreads racing nodes' first candidates over the ID space. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * Durable, collision-free node IDs through create-only claims (Leases on Kubernetes).
 *
 * - A claim is created with create semantics: a conflict means taken, try the next free ID.
 * - A restart finds this node's own claim and keeps it, so the ID never changes under a running
 *   datapath; without one it first tries the ID its Node still publishes.
 * - Claims whose Node no longer exists are reclaimed (deleted on the version read).
 * - An explicit ID is claimed the same way; one another live node holds or publishes is refused
 *   with {@link NodeIdConflictError}.
 */
export class NodeIdAllocator {
  private current: NodeIdClaim | undefined;
  private lastProblem: string | undefined;

  constructor(
    private readonly store: NodeIdStore,
    private readonly nodeName: string,
    private readonly logger?: Logger,
    private readonly maxId = MAX_NODE_ID,
  ) {}

  /** The ID held after {@link claim}, undefined before. */
  get id(): number | undefined {
    return this.current?.id;
  }

  /** Why the last {@link verify} found the claim unhealthy; undefined when fine. */
  get problem(): string | undefined {
    return this.lastProblem;
  }

  /** Claims `requested` (1..max), or any free ID when 0. */
  async claim(requested: number): Promise<NodeIdResult> {
    if (!Number.isInteger(requested) || requested < 0 || requested > this.maxId)
      throw new NodeIdAllocationError(`nodeId: must be 0 (allocate) or 1..${this.maxId}, got ${requested}`);
    // Claims first, Nodes second: a claim in this list was created by an agent whose Node existed
    // before the claim, hence before the Node list below, so a missing Node really is deleted.
    const claims = await this.store.listClaims();
    const nodes = await this.store.listNodes();
    const self = nodes.get(this.nodeName);
    if (!self) throw new NodeIdAllocationError(`Node ${this.nodeName} does not exist (yet): cannot claim a node ID for it`);

    const reclaimed: number[] = [];
    const live: NodeIdClaim[] = [];
    for (const c of claims) {
      if (nodes.has(c.holder)) {
        live.push(c);
        continue;
      }
      if (await this.store.deleteClaim(c)) {
        reclaimed.push(c.id);
        this.logger?.info({ nodeId: c.id, holder: c.holder }, 'reclaimed the node ID of a deleted Node');
      }
    }
    const own = live.filter((c) => c.holder === this.nodeName).sort((a, b) => a.id - b.id);
    const takenBy = new Map<number, { holder: string; how: 'claimed' | 'annotated' }>();
    for (const [name, n] of nodes)
      if (name !== this.nodeName && n.annotatedId !== undefined) takenBy.set(n.annotatedId, { holder: name, how: 'annotated' });
    for (const c of live) if (c.holder !== this.nodeName) takenBy.set(c.id, { holder: c.holder, how: 'claimed' });

    const finish = async (claim: NodeIdClaim, how: 'kept' | 'claimed'): Promise<NodeIdResult> => {
      let held = claim;
      if (held.ownerUid !== self.uid) {
        if (await this.store.setOwner(held, self.uid)) held = (await this.store.getClaim(held.id)) ?? held;
      }
      const released: number[] = [];
      for (const other of own) if (other.id !== held.id && (await this.store.deleteClaim(other))) released.push(other.id);
      this.current = held;
      this.lastProblem = undefined;
      return { id: held.id, how, reclaimed, released };
    };

    if (requested !== 0) {
      const mine = own.find((c) => c.id === requested);
      if (mine) return finish(mine, 'kept');
      const other = takenBy.get(requested);
      if (other) throw new NodeIdConflictError(requested, other.holder, other.how);
      const created = await this.store.createClaim(requested, this.nodeName, self.uid);
      if (created === 'taken') {
        const holder = (await this.store.getClaim(requested))?.holder ?? 'another node';
        throw new NodeIdConflictError(requested, holder, 'claimed');
      }
      return finish(created, 'claimed');
    }

    if (own.length > 0) return finish(own.find((c) => c.id === self.annotatedId) ?? own[0]!, 'kept');
    const free = (id: number): boolean => id >= 1 && id <= this.maxId && !takenBy.has(id);
    const tried = new Set<number>();
    const attempt = async (id: number): Promise<NodeIdClaim | undefined> => {
      tried.add(id);
      const created = await this.store.createClaim(id, this.nodeName, self.uid);
      return created === 'taken' ? undefined : created;
    };
    // The ID this Node still publishes (its claim was lost while the agent was down) comes first.
    if (self.annotatedId !== undefined && free(self.annotatedId)) {
      const c = await attempt(self.annotatedId);
      if (c) return finish(c, 'claimed');
    }
    const start = fnv1a(this.nodeName) % this.maxId;
    for (let i = 0; i < this.maxId; i++) {
      const id = ((start + i) % this.maxId) + 1;
      if (!free(id) || tried.has(id)) continue;
      const c = await attempt(id);
      if (c) return finish(c, 'claimed');
    }
    throw new NodeIdExhaustedError(takenBy.size + tried.size);
  }

  /**
   * Level-triggered check of the held claim (call periodically): a claim deleted behind the
   * agent's back (by hand, or by the garbage collector after the Node was re-registered) is
   * created again; a claim now held by another node is reported (the ID cannot change under the
   * running datapath, so this stays a problem until an operator resolves it).
   */
  async verify(): Promise<'ok' | 'restored' | 'conflict'> {
    const held = this.current;
    if (!held) return 'ok';
    try {
      const now = await this.store.getClaim(held.id);
      if (now && now.holder === this.nodeName) {
        this.current = now;
        const self = (await this.store.listNodes()).get(this.nodeName);
        if (self && now.ownerUid !== self.uid && (await this.store.setOwner(now, self.uid)))
          this.current = (await this.store.getClaim(held.id)) ?? now;
        this.lastProblem = undefined;
        return 'ok';
      }
      if (now) return this.conflict(now.holder);
      const self = (await this.store.listNodes()).get(this.nodeName);
      if (!self) {
        this.lastProblem = `Node ${this.nodeName} does not exist: node ID ${held.id} cannot be claimed again until it does`;
        return 'ok';
      }
      const created = await this.store.createClaim(held.id, this.nodeName, self.uid);
      if (created === 'taken') return this.conflict((await this.store.getClaim(held.id))?.holder ?? 'another node');
      this.current = created;
      this.lastProblem = undefined;
      this.logger?.warn({ nodeId: held.id }, 'the claim of this node ID was gone; claimed it again');
      return 'restored';
    } catch (err) {
      this.logger?.warn({ nodeId: held.id, err: errorMessage(err) }, 'checking the node ID claim failed');
      return 'ok';
    }
  }

  private conflict(holder: string): 'conflict' {
    const id = this.current!.id;
    this.lastProblem = `node ID ${id} in use here is now claimed by node ${holder}: IPsec marks and SPIs collide`;
    this.logger?.error({ nodeId: id, holder }, this.lastProblem);
    return 'conflict';
  }
}
