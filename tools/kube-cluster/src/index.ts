export { KubeCluster, SERVICE_ACCOUNT_ISSUER, type ApiResponse, type Credentials, type KubeClusterOptions } from './cluster.js';
export { KubeApiError, KubeClusterError } from './errors.js';
export { generatePki, type Pki } from './pki.js';
