import { ContainerModule } from 'inversify';
import { type AgentConfig, TOKENS } from '@veil/agent-core';
import { BpfDatapath } from './bpf-datapath.js';
import { type BpfDatapathOptions, datapathOptionsFromConfig } from './options.js';

/**
 * An inversify module binding `TOKENS.Datapath` to a {@link BpfDatapath} (singleton, opened on
 * first use). Options are derived from the bound `TOKENS.Config` ({@link datapathOptionsFromConfig})
 * and the agent's logger, then overridden by `options` (an object, or a function of the config).
 *
 * ```ts
 * Agent.create({ config, platformModules: [kubernetesModule(kc), bpfDatapathModule({ deviceRoles: { wg0: 'tunnel', eth0: 'underlay' } })] });
 * ```
 */
export function bpfDatapathModule(
  options: BpfDatapathOptions | ((config: AgentConfig) => BpfDatapathOptions) = {},
): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(TOKENS.Datapath)
      .toDynamicValue((ctx) => {
        const config = ctx.get(TOKENS.Config);
        const extra = typeof options === 'function' ? options(config) : options;
        const logger = ctx.get(TOKENS.Logger, { optional: true });
        return BpfDatapath.open({
          ...datapathOptionsFromConfig(config),
          ...(logger ? { logger: logger.child({ component: 'datapath' }) } : {}),
          ...extra,
        });
      })
      .inSingletonScope();
  });
}
