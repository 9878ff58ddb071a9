import type { NodeIdClaim, NodeIdNodeInfo, NodeIdStore } from '../nodeid/allocator.js';

/**
 * In-memory {@link NodeIdStore} with the API server's semantics: create fails when the ID exists,
 * deletes and owner changes are conditional on the version read. Every call yields to the event
 * loop first, so concurrent allocators interleave as they would over HTTP.
 */
export class MemoryNodeIdStore implements NodeIdStore {
  readonly claims = new Map<number, NodeIdClaim>();
  readonly nodes = new Map<string, { uid: string; annotatedId?: number }>();
  private seq = 0;
  /** Calls by operation (tests check what a restart costs). */
  readonly calls: Record<string, number> = {};

  private async tick(op: string): Promise<void> {
    this.calls[op] = (this.calls[op] ?? 0) + 1;
    await new Promise((r) => setImmediate(r));
  }

  /** Adds (or re-registers with a new UID) a Node. */
  addNode(name: string, annotatedId?: number): string {
    const uid = `uid-${name}-${++this.seq}`;
    this.nodes.set(name, { uid, ...(annotatedId !== undefined ? { annotatedId } : {}) });
    return uid;
  }

  async listClaims(): Promise<NodeIdClaim[]> {
    await this.tick('listClaims');
    return [...this.claims.values()];
  }

  async listNodes(): Promise<Map<string, NodeIdNodeInfo>> {
    await this.tick('listNodes');
    return new Map([...this.nodes].map(([k, v]) => [k, { ...v }]));
  }

  async getClaim(id: number): Promise<NodeIdClaim | undefined> {
    await this.tick('getClaim');
    return this.claims.get(id);
  }

  async createClaim(id: number, holder: string, ownerUid: string): Promise<NodeIdClaim | 'taken'> {
    await this.tick('createClaim');
    if (this.claims.has(id)) return 'taken';
    const c: NodeIdClaim = { id, holder, ownerUid, version: String(++this.seq) };
    this.claims.set(id, c);
    return c;
  }

  async deleteClaim(claim: NodeIdClaim): Promise<boolean> {
    await this.tick('deleteClaim');
    if (this.claims.get(claim.id)?.version !== claim.version) return false;
    this.claims.delete(claim.id);
    return true;
  }

  async setOwner(claim: NodeIdClaim, ownerUid: string): Promise<boolean> {
    await this.tick('setOwner');
    const now = this.claims.get(claim.id);
    if (now?.version !== claim.version) return false;
    this.claims.set(claim.id, { ...now, ownerUid, version: String(++this.seq) });
    return true;
  }
}
