#!/usr/bin/env node
// `node tools/kube-cluster/dist/main.js`: starts the pinned etcd + kube-apiserver on loopback for
// poking by hand (kubectl/helm with the printed kubeconfig); Ctrl-C stops both and deletes the dir.
import { KubeCluster } from './cluster.js';

const cluster = await KubeCluster.start({ log: (l) => process.stderr.write(`[kube-cluster] ${l}\n`) });
process.stdout.write(
  `server:     ${cluster.server}\nkubeconfig: ${cluster.kubeconfigPath}\netcd:       ${cluster.etcdUrl}\n` +
    `pids:       etcd ${cluster.pids.etcd}, kube-apiserver ${cluster.pids.apiserver}\n` +
    `try:        helm install veil charts/veil -n kube-system --dry-run=server --kubeconfig ${cluster.kubeconfigPath}\n` +
    'Ctrl-C stops both and deletes the directory.\n',
);
const stop = (): void => {
  void cluster.stop().then(() => process.exit(0));
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
