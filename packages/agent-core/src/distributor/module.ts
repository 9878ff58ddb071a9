import type { KubeConfig } from '@kubernetes/client-node';
import { ContainerModule } from 'inversify';
import { TOKENS } from '../di/tokens.js';
import { KubernetesEventRecorder } from './k8s-events.js';
import { KubernetesKeyDistributor } from './kubernetes.js';
import { LeaseNodeIdStore } from '../nodeid/kubernetes.js';

/**
 * Binds the Kubernetes platform services: `TOKENS.KeyDistributor` (Node annotations via an
 * informer; patches only `config.nodeName`) and `TOKENS.EventRecorder` (core/v1 Events in
 * `config.eventsNamespace`) and `TOKENS.NodeIdStore` (one Lease per node ID in
 * `config.nodeIdNamespace`). The Datapath is bound separately (BPF in production, a fake in tests).
 */
export function kubernetesModule(kubeConfig: KubeConfig): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(TOKENS.KeyDistributor)
      .toDynamicValue((ctx) => {
        const config = ctx.get(TOKENS.Config);
        return new KubernetesKeyDistributor({ kubeConfig, nodeName: config.nodeName, logger: ctx.get(TOKENS.Logger) });
      })
      .inSingletonScope();
    bind(TOKENS.EventRecorder)
      .toDynamicValue((ctx) => {
        const config = ctx.get(TOKENS.Config);
        return new KubernetesEventRecorder(kubeConfig, {
          namespace: config.eventsNamespace,
          component: 'veil-agent',
          host: config.nodeName,
          logger: ctx.get(TOKENS.Logger),
        });
      })
      .inSingletonScope();
    bind(TOKENS.NodeIdStore)
      .toDynamicValue((ctx) => new LeaseNodeIdStore(kubeConfig, ctx.get(TOKENS.Config).nodeIdNamespace))
      .inSingletonScope();
  });
}
