import { ContainerModule } from 'inversify';
import { TOKENS } from '@veil/agent-core';
import { IpsecBackend, type IpsecBackendOptions } from './backend.js';

/** A ContainerModule binding agent-core's TOKENS.EncryptionBackend to an IpsecBackend. */
export function ipsecModule(options: IpsecBackendOptions = {}): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(TOKENS.EncryptionBackend)
      .toDynamicValue(
        (ctx) =>
          new IpsecBackend(
            ctx.get(TOKENS.Config),
            ctx.get(TOKENS.Logger),
            options,
            ctx.get(TOKENS.EventRecorder, { optional: true }),
          ),
      )
      .inSingletonScope();
  });
}
