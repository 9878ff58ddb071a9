import { ContainerModule, type ServiceIdentifier } from 'inversify';
import type { AgentConfig, EncryptionBackend, Logger } from '@veil/agent-core';
import { WireGuardBackend, type WireGuardBackendOptions } from './backend.js';

// agent-core's TOKENS are Symbol.for() keys precisely so that a backend can bind them without
// loading agent-core at runtime (which pulls in the Kubernetes client). tests/backend.test.ts
// checks these stay equal to agent-core's TOKENS.
const EncryptionBackendToken = Symbol.for('veil.agent-core.EncryptionBackend') as ServiceIdentifier<EncryptionBackend>;
const ConfigToken = Symbol.for('veil.agent-core.Config') as ServiceIdentifier<AgentConfig>;
const LoggerToken = Symbol.for('veil.agent-core.Logger') as ServiceIdentifier<Logger>;

/** A ContainerModule binding TOKENS.EncryptionBackend to a WireGuardBackend with these options. */
export function wireguardModule(options: WireGuardBackendOptions = {}): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(EncryptionBackendToken)
      .toDynamicValue((ctx) => new WireGuardBackend(ctx.get(ConfigToken), ctx.get(LoggerToken), options))
      .inSingletonScope();
  });
}
