// @ts-check
/**
 * veil-backend-null: an example contributor backend, published as its own npm package.
 *
 * What it shows (and nothing else):
 *   - the agent loads it by package name: `encryption.type: veil-backend-null`;
 *   - it owns a configuration section, `encryption.nullBackend`, declared with
 *     `defineBackendConfig` and read with `backendSection` (core merges defaults, flags
 *     `--encryption.nullBackend.<key>`, env `VEIL_ENCRYPTION_NULL_BACKEND_<KEY>`, and refuses a bad
 *     value naming its full path);
 *   - it implements `EncryptionBackend` and default-exports a `ContainerModule` binding it.
 *
 * It ENCRYPTS NOTHING: steering is `none`, so pod traffic takes the normal route in clear. It keeps
 * the peers it was given so `veil status` can list them. Never deploy it.
 */
import { ContainerModule } from 'inversify';
import { z } from 'zod';
import { TOKENS, backendSection, defineBackendConfig } from '@veil/agent-core';

const schema = z.strictObject({
  /** Shown by `status()` and logged at start. */
  label: z.string().min(1).default('null backend: pod traffic is NOT encrypted'),
  /** Peers beyond this many are refused by upsertPeer (the agent marks them `error` and retries). */
  maxPeers: z.number().int().min(1).default(1000),
});

/** `encryption.nullBackend`. */
export const config = defineBackendConfig({ section: 'nullBackend', schema, defaults: schema.parse({}) });

/** @typedef {import('@veil/agent-core').PeerNode} PeerNode */

/** @implements {import('@veil/agent-core').EncryptionBackend} */
export class NullBackend {
  name = 'null';
  /** @type {import('@veil/agent-core').PeerAnnotationSpec[]} */
  peerAnnotations = [];
  /** @type {Map<string, PeerNode>} */
  #peers = new Map();

  /**
   * @param {import('@veil/agent-core').AgentConfig} agentConfig
   * @param {import('@veil/agent-core').Logger} logger
   */
  constructor(agentConfig, logger) {
    this.settings = backendSection(agentConfig, config);
    this.log = logger.child({ component: 'backend-null' });
  }

  async init() {
    this.log.warn(this.settings.label);
    return [];
  }

  /** @param {PeerNode} peer */
  async upsertPeer(peer) {
    if (!this.#peers.has(peer.name) && this.#peers.size >= this.settings.maxPeers) {
      throw new Error(`encryption.nullBackend.maxPeers (${this.settings.maxPeers}) reached; ${peer.name} not added`);
    }
    this.#peers.set(peer.name, peer);
    return {};
  }

  /** @param {string} name */
  async removePeer(name) {
    this.#peers.delete(name);
  }

  /** @param {ReadonlySet<string>} keep */
  async prune(keep) {
    const removed = [...this.#peers.keys()].filter((n) => !keep.has(n));
    for (const n of removed) this.#peers.delete(n);
    return removed;
  }

  steering() {
    return /** @type {const} */ ({ kind: 'none' });
  }

  localMaterial() {
    return { 'veil.io/null-backend': 'true' };
  }

  async status() {
    return {
      backend: this.name,
      driver: 'none',
      peers: [...this.#peers.keys()].map((name) => ({ name, detail: 'unencrypted' })),
      errors: [],
      details: { label: this.settings.label, maxPeers: this.settings.maxPeers },
    };
  }

  async close() {}
}

export default new ContainerModule(({ bind }) => {
  bind(TOKENS.EncryptionBackend)
    .toDynamicValue((ctx) => new NullBackend(ctx.get(TOKENS.Config), ctx.get(TOKENS.Logger)))
    .inSingletonScope();
});
