import { KubeConfig } from '@kubernetes/client-node';
import { KubeApiServerDouble, type KubeObject } from '@veil/kube-apiserver-double';
import { InMemoryCluster, KubernetesKeyDistributor, type KeyDistributor, type ObservedNode } from '../src/index.js';
import { captureLogger } from './helpers.js';

/** Drives "the cluster" for a reconciler suite, whichever distributor is under test. */
export interface ClusterDriver {
  readonly name: string;
  distributor(localName: string): KeyDistributor;
  upsert(node: ObservedNode): void;
  delete(name: string): void;
  annotations(name: string): Record<string, string> | undefined;
  close(): Promise<void>;
}

export function toNodeObject(n: ObservedNode): KubeObject {
  return {
    metadata: { name: n.name, annotations: { ...n.annotations }, labels: { 'kubernetes.io/hostname': n.name } },
    spec: { podCIDR: n.podCIDRs[0], podCIDRs: [...n.podCIDRs] },
    status: {
      addresses: [...n.internalIPs.map((address) => ({ type: 'InternalIP', address })), { type: 'Hostname', address: n.name }],
    },
  };
}

export function inMemoryDriver(): ClusterDriver {
  const cluster = new InMemoryCluster();
  return {
    name: 'in-memory',
    distributor: (local) => cluster.distributor(local),
    upsert: (n) => cluster.upsertNode(n),
    delete: (name) => cluster.deleteNode(name),
    annotations: (name) => cluster.getNode(name)?.annotations,
    close: async () => {},
  };
}

export function kubeConfigFor(server: KubeApiServerDouble): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions(server.kubeConfigOptions());
  return kc;
}

export async function kubernetesDriver(): Promise<ClusterDriver & { server: KubeApiServerDouble }> {
  const server = await KubeApiServerDouble.start();
  const log = captureLogger();
  return {
    name: 'kubernetes',
    server,
    distributor: (local) =>
      new KubernetesKeyDistributor({
        kubeConfig: kubeConfigFor(server),
        nodeName: local,
        logger: log.logger,
        restartBackoff: { initialMs: 20, maxMs: 200 },
      }),
    upsert: (n) => {
      server.apply('nodes', toNodeObject(n));
    },
    delete: (name) => {
      server.delete('nodes', name);
    },
    annotations: (name) => server.get('nodes', name)?.metadata.annotations as Record<string, string> | undefined,
    close: () => server.close(),
  };
}
