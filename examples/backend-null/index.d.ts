import type { ContainerModule } from 'inversify';
import type { AgentConfig, BackendConfigSpec, EncryptionBackend, Logger } from '@veil/agent-core';

/** The `encryption.nullBackend` section. */
export interface NullBackendConfig {
  label: string;
  maxPeers: number;
}
export declare const config: BackendConfigSpec<NullBackendConfig>;
/** Encrypts nothing; see index.js. */
export declare class NullBackend implements EncryptionBackend {
  constructor(agentConfig: AgentConfig, logger: Logger);
  readonly name: 'null';
  readonly settings: NullBackendConfig;
  peerAnnotations: EncryptionBackend['peerAnnotations'];
  init: EncryptionBackend['init'];
  upsertPeer: EncryptionBackend['upsertPeer'];
  removePeer: EncryptionBackend['removePeer'];
  prune: EncryptionBackend['prune'];
  steering: EncryptionBackend['steering'];
  localMaterial: EncryptionBackend['localMaterial'];
  status: EncryptionBackend['status'];
  close: EncryptionBackend['close'];
}
declare const module: ContainerModule;
export default module;
