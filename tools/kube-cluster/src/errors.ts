/** A control-plane process failed to start, become ready or stop; names the component and its log. */
export class KubeClusterError extends Error {
  override name = 'KubeClusterError';
  constructor(
    message: string,
    readonly component: 'etcd' | 'kube-apiserver' | 'pki' | 'api',
    readonly logFile?: string,
  ) {
    super(logFile ? `${component}: ${message} (log: ${logFile})` : `${component}: ${message}`);
  }
}

/** An API request answered with an unexpected status; carries the server's Status body. */
export class KubeApiError extends Error {
  override name = 'KubeApiError';
  constructor(
    readonly method: string,
    readonly path: string,
    readonly statusCode: number,
    readonly body: unknown,
  ) {
    const msg = typeof body === 'object' && body !== null && 'message' in body ? String(body.message) : JSON.stringify(body);
    super(`${method} ${path}: HTTP ${statusCode}: ${msg}`);
  }
}
