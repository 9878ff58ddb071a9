import type { KubeConfig } from '@kubernetes/client-node';
import fetch from 'node-fetch';
import { VeilAgentError } from '../errors.js';
import { NODE_ID_ANNOTATION } from '../types/index.js';
import { NodeIdStoreUnavailableError, type NodeIdClaim, type NodeIdNodeInfo, type NodeIdStore } from './allocator.js';

/** Lease name prefix: `veil-node-id-<id>`. */
export const NODE_ID_LEASE_PREFIX = 'veil-node-id-';
/** Label every node-ID Lease carries (its value is the ID). */
export const NODE_ID_LEASE_LABEL = 'veil.io/node-id';

/** A Kubernetes API call of the node-ID store answered with an unexpected status. */
export class NodeIdApiError extends VeilAgentError {
  override name = 'NodeIdApiError';
  constructor(
    readonly operation: string,
    readonly statusCode: number,
    message: string,
  ) {
    super(`node ID ${operation}: HTTP ${statusCode} ${message}`);
  }
}

interface LeaseJson {
  metadata?: {
    name?: string;
    uid?: string;
    resourceVersion?: string;
    ownerReferences?: { kind?: string; uid?: string }[];
  };
  spec?: { holderIdentity?: string };
}

interface MetaListJson<T> {
  metadata?: { continue?: string };
  items?: T[];
}

/**
 * {@link NodeIdStore} over coordination.k8s.io/v1 Leases, one per ID (`veil-node-id-<id>`) in one
 * namespace. Create-only semantics come from the API server (409 AlreadyExists); each Lease has
 * `holderIdentity` = node name and an owner reference to the Node, so the garbage collector frees
 * it when the Node is deleted. The Lease is never renewed: it is a durable claim, not a lock.
 *
 * RBAC: leases get, list, create, patch, delete in the namespace; nodes list.
 */
export class LeaseNodeIdStore implements NodeIdStore {
  constructor(
    private readonly kubeConfig: KubeConfig,
    private readonly namespace: string,
    private readonly pageSize = 500,
  ) {}

  private url(path: string): URL {
    const cluster = this.kubeConfig.getCurrentCluster();
    if (!cluster) throw new VeilAgentError('kubeconfig has no current cluster');
    return new URL(`${cluster.server.replace(/\/$/, '')}${path}`);
  }

  private get leases(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.namespace)}/leases`;
  }

  private async call(
    method: string,
    url: URL,
    body?: unknown,
    contentType = 'application/json',
    accept = 'application/json',
  ): Promise<{ status: number; json: unknown }> {
    const init = await this.kubeConfig.applyToFetchOptions({ method });
    // The kubeconfig's credentials (a bearer token) come as a Headers object: copy its entries.
    const headers: Record<string, string> = {};
    const given = init.headers as { forEach?: (f: (v: string, k: string) => void) => void } | Record<string, string> | undefined;
    if (given && typeof given.forEach === 'function') given.forEach((v: string, k: string) => (headers[k] = v));
    else if (given) Object.assign(headers, given);
    headers.Accept = accept;
    if (body !== undefined) headers['Content-Type'] = contentType;
    const res = await fetch(url.href, { ...init, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.status, json };
  }

  private fail(operation: string, r: { status: number; json: unknown }): never {
    const message = (r.json as { message?: string } | undefined)?.message ?? '';
    throw new NodeIdApiError(operation, r.status, message);
  }

  private toClaim(lease: LeaseJson): NodeIdClaim | undefined {
    const name = lease.metadata?.name ?? '';
    if (!name.startsWith(NODE_ID_LEASE_PREFIX)) return undefined;
    const idText = name.slice(NODE_ID_LEASE_PREFIX.length);
    const id = /^[1-9]\d{0,4}$/.test(idText) ? Number(idText) : NaN;
    const holder = lease.spec?.holderIdentity;
    if (!Number.isInteger(id) || !holder) return undefined;
    const owner = lease.metadata?.ownerReferences?.find((o) => o.kind === 'Node');
    return {
      id,
      holder,
      ...(owner?.uid ? { ownerUid: owner.uid } : {}),
      version: `${lease.metadata?.uid ?? ''}/${lease.metadata?.resourceVersion ?? ''}`,
    };
  }

  async listClaims(): Promise<NodeIdClaim[]> {
    const out: NodeIdClaim[] = [];
    let cont: string | undefined;
    do {
      const url = this.url(this.leases);
      url.searchParams.set('labelSelector', NODE_ID_LEASE_LABEL);
      url.searchParams.set('limit', String(this.pageSize));
      if (cont) url.searchParams.set('continue', cont);
      const r = await this.call('GET', url);
      // 404 on a collection: the server does not serve coordination.k8s.io/v1 Leases at all.
      if (r.status === 404)
        throw new NodeIdStoreUnavailableError(
          `node ID list leases: the API server does not serve coordination.k8s.io/v1 Leases (HTTP 404)`,
        );
      if (r.status !== 200) this.fail('list leases', r);
      const page = r.json as MetaListJson<LeaseJson>;
      for (const l of page.items ?? []) {
        const c = this.toClaim(l);
        if (c) out.push(c);
      }
      cont = page.metadata?.continue || undefined;
    } while (cont);
    return out;
  }

  async listNodes(): Promise<Map<string, NodeIdNodeInfo>> {
    const out = new Map<string, NodeIdNodeInfo>();
    let cont: string | undefined;
    do {
      const url = this.url('/api/v1/nodes');
      url.searchParams.set('limit', String(this.pageSize));
      if (cont) url.searchParams.set('continue', cont);
      // Metadata only (names, UIDs, annotations): a fraction of full Node objects.
      const r = await this.call(
        'GET',
        url,
        undefined,
        undefined,
        'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json',
      );
      if (r.status !== 200) this.fail('list nodes', r);
      const page = r.json as MetaListJson<{
        metadata?: { name?: string; uid?: string; annotations?: Record<string, string> };
      }>;
      for (const n of page.items ?? []) {
        const name = n.metadata?.name;
        if (!name) continue;
        const text = n.metadata?.annotations?.[NODE_ID_ANNOTATION];
        const id = text !== undefined && /^[1-9]\d{0,4}$/.test(text) ? Number(text) : undefined;
        out.set(name, { uid: n.metadata?.uid ?? '', ...(id !== undefined && id <= 0xffff ? { annotatedId: id } : {}) });
      }
      cont = page.metadata?.continue || undefined;
    } while (cont);
    return out;
  }

  async getClaim(id: number): Promise<NodeIdClaim | undefined> {
    const r = await this.call('GET', this.url(`${this.leases}/${NODE_ID_LEASE_PREFIX}${id}`));
    if (r.status === 404) return undefined;
    if (r.status !== 200) this.fail('get lease', r);
    return this.toClaim(r.json as LeaseJson);
  }

  async createClaim(id: number, holder: string, ownerUid: string): Promise<NodeIdClaim | 'taken'> {
    const lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: `${NODE_ID_LEASE_PREFIX}${id}`,
        namespace: this.namespace,
        labels: { [NODE_ID_LEASE_LABEL]: String(id), 'app.kubernetes.io/managed-by': 'veil' },
        ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: holder, uid: ownerUid }],
      },
      spec: { holderIdentity: holder, acquireTime: new Date().toISOString().replace(/Z$/, '000Z') },
    };
    const r = await this.call('POST', this.url(this.leases), lease);
    if (r.status === 409) return 'taken';
    if (r.status !== 201) this.fail('create lease', r);
    const claim = this.toClaim(r.json as LeaseJson);
    if (!claim) throw new NodeIdApiError('create lease', r.status, 'the created Lease is not a node-ID claim');
    return claim;
  }

  private preconditions(claim: NodeIdClaim): { uid: string; resourceVersion: string } {
    const [uid = '', resourceVersion = ''] = claim.version.split('/');
    return { uid, resourceVersion };
  }

  async deleteClaim(claim: NodeIdClaim): Promise<boolean> {
    const r = await this.call('DELETE', this.url(`${this.leases}/${NODE_ID_LEASE_PREFIX}${claim.id}`), {
      apiVersion: 'v1',
      kind: 'DeleteOptions',
      preconditions: this.preconditions(claim),
    });
    if (r.status === 404 || r.status === 409) return false;
    if (r.status !== 200 && r.status !== 202) this.fail('delete lease', r);
    return true;
  }

  async setOwner(claim: NodeIdClaim, ownerUid: string): Promise<boolean> {
    // A merge patch carrying resourceVersion is conditional: 409 when the Lease changed meanwhile.
    const r = await this.call(
      'PATCH',
      this.url(`${this.leases}/${NODE_ID_LEASE_PREFIX}${claim.id}`),
      {
        metadata: {
          resourceVersion: this.preconditions(claim).resourceVersion,
          ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: claim.holder, uid: ownerUid }],
        },
      },
      'application/merge-patch+json',
    );
    if (r.status === 404 || r.status === 409) return false;
    if (r.status !== 200) this.fail('patch lease', r);
    return true;
  }
}
