import { ContainerModule } from 'inversify';
import { TOKENS } from '@veil/agent-core';
import { WireGuardBackend, type WireGuardBackendOptions } from './backend.js';

/** A ContainerModule binding TOKENS.EncryptionBackend to a WireGuardBackend with these options. */
export function wireguardModule(options: WireGuardBackendOptions = {}): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(TOKENS.EncryptionBackend)
      .toDynamicValue((ctx) => new WireGuardBackend(ctx.get(TOKENS.Config), ctx.get(TOKENS.Logger), options))
      .inSingletonScope();
  });
}
