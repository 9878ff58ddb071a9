// @ts-check
/**
 * Example third-party Veil backend: "plaintext" (no encryption at all).
 *
 * It shows the whole contract a backend package has to meet, and nothing else:
 *   1. implement `EncryptionBackend` (see @veil/agent-core `src/types/backend.ts`);
 *   2. default-export an inversify `ContainerModule` that binds `TOKENS.EncryptionBackend`;
 *   3. optionally, export `config`: its own section of the agent configuration
 *      (`encryption.plaintext` here), which core merges, validates and names by full path.
 *
 * Load it without touching agent-core:
 *   encryption.type: ./examples/plaintext-backend        (a path: file or directory)
 *   encryption.type: @acme/veil-backend-foo              (a package name works the same way)
 *
 * It is plain ESM JavaScript so it runs with no build step. It steers nothing and programs
 * nothing; it only remembers peers so `veil status` can list them. Do not use it in production.
 */
import { ContainerModule } from 'inversify';
import { z } from 'zod';
import { TOKENS, backendSection, defineBackendConfig } from '@veil/agent-core';

const schema = z.strictObject({
  /** Logged at start and shown by `veil status`: who should know traffic is not encrypted. */
  banner: z.string().min(1).default('pod traffic is NOT encrypted'),
});

/** `encryption.plaintext`: flags `--encryption.plaintext.banner`, env `VEIL_ENCRYPTION_PLAINTEXT_BANNER`. */
export const config = defineBackendConfig({ section: 'plaintext', schema, defaults: schema.parse({}) });

/** @typedef {import('@veil/agent-core').EncryptionBackend} EncryptionBackend */
/** @typedef {import('@veil/agent-core').PeerNode} PeerNode */

/** @implements {EncryptionBackend} */
export class PlaintextBackend {
  name = 'plaintext';
  /**
   * Peers need no annotation: there is no key to exchange.
   * @type {import('@veil/agent-core').PeerAnnotationSpec[]}
   */
  peerAnnotations = [];
  /** @type {Map<string, PeerNode>} */
  #peers = new Map();

  /**
   * @param {import('@veil/agent-core').AgentConfig} agentConfig
   * @param {import('@veil/agent-core').Logger} logger
   */
  constructor(agentConfig, logger) {
    this.log = logger.child({ component: 'backend-plaintext' });
    this.settings = backendSection(agentConfig, config);
  }

  async init() {
    this.log.warn(`plaintext backend: ${this.settings.banner}`);
    return [];
  }

  /** @param {PeerNode} peer */
  async upsertPeer(peer) {
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
    return { 'veil.io/plaintext-enabled': 'true' };
  }

  async status() {
    return {
      backend: this.name,
      driver: 'none',
      peers: [...this.#peers.keys()].map((name) => ({ name, detail: 'unencrypted' })),
      errors: [],
      details: { banner: this.settings.banner },
    };
  }

  async close() {}
}

export default new ContainerModule(({ bind }) => {
  bind(TOKENS.EncryptionBackend)
    .toDynamicValue((ctx) => new PlaintextBackend(ctx.get(TOKENS.Config), ctx.get(TOKENS.Logger)))
    .inSingletonScope();
});
