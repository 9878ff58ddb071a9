import http from 'node:http';
import type { AgentStatus } from '@veil/agent-core';
import {
  DEFAULT_STATUS_SOCKET,
  STATUS_API,
  type AgentInfo,
  type CounterListing,
  type IpcacheListing,
  type KeyRotationResponse,
} from '@veil/agent-core/status-api';
import { VeilCliError } from './errors.js';

// Only the light `@veil/agent-core/status-api` entry is loaded at runtime: the full agent-core
// (client-node, inversify) takes seconds to import and `veil status` should answer at once.

/** Where to find the agent when neither `--socket` nor `VEIL_STATUS_SOCKET` says. */
export const DEFAULT_SOCKET = DEFAULT_STATUS_SOCKET;

/** Hint printed when the agent cannot be reached. */
const AGENT_HINT = 'kubectl -n kube-system get pods -l app.kubernetes.io/name=veil';

/** `--socket` > `VEIL_STATUS_SOCKET` > agent-core's default `status.socketPath`. */
export function resolveSocketPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (flag !== undefined && flag !== '') return flag;
  const fromEnv = env.VEIL_STATUS_SOCKET;
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : DEFAULT_SOCKET;
}

/** Nothing answers on the socket (agent down, wrong path, no permission, no answer in time). */
export class AgentUnreachableError extends VeilCliError {
  override name = 'AgentUnreachableError';
  constructor(
    readonly socketPath: string,
    /** `ENOENT`, `ECONNREFUSED`, `EACCES`, `ETIMEDOUT`, … */
    readonly code: string,
    options?: { cause?: unknown },
  ) {
    super(AgentUnreachableError.describe(socketPath, code), { exitCode: 1, ...options });
  }

  private static describe(socketPath: string, code: string): string {
    switch (code) {
      case 'EACCES':
      case 'EPERM':
        return `permission denied on the Veil agent socket ${socketPath} (try again as root)`;
      case 'ETIMEDOUT':
        return `the Veil agent at ${socketPath} did not answer in time (is it overloaded or stuck? try: ${AGENT_HINT})`;
      default:
        return `cannot reach the Veil agent at ${socketPath} (is it running? try: ${AGENT_HINT})`;
    }
  }
}

/** The agent answered, but not with the expected JSON (HTTP error, 501 unsupported, garbage). */
export class AgentResponseError extends VeilCliError {
  override name = 'AgentResponseError';
  constructor(
    readonly method: string,
    readonly path: string,
    /** HTTP status; 0 when the body could not be parsed. */
    readonly statusCode: number,
    /** The agent's error code (`NOT_IMPLEMENTED`, …) when it sent one. */
    readonly code: string | undefined,
    message: string,
  ) {
    super(message, { exitCode: 1 });
  }
}

export interface StatusClientOptions {
  socketPath: string;
  /** Per request; default 5000 ms (key rotation: at least 30 s). */
  timeoutMs?: number;
}

/** A tiny JSON client for the agent's status socket (HTTP over a unix socket). */
export class StatusClient {
  readonly socketPath: string;
  private readonly timeoutMs: number;

  constructor(opts: StatusClientOptions) {
    this.socketPath = opts.socketPath;
    this.timeoutMs = opts.timeoutMs ?? 5000;
  }

  status(): Promise<AgentStatus> {
    return this.request<AgentStatus>(STATUS_API.status.method, STATUS_API.status.path);
  }

  /** `undefined` when the agent predates `/v1/agent` (404). */
  async agentInfo(): Promise<AgentInfo | undefined> {
    try {
      return await this.request<AgentInfo>(STATUS_API.agent.method, STATUS_API.agent.path);
    } catch (err) {
      if (err instanceof AgentResponseError && err.statusCode === 404) return undefined;
      throw err;
    }
  }

  ipcache(): Promise<IpcacheListing> {
    return this.request<IpcacheListing>(STATUS_API.ipcache.method, STATUS_API.ipcache.path);
  }

  counters(): Promise<CounterListing> {
    return this.request<CounterListing>(STATUS_API.counters.method, STATUS_API.counters.path);
  }

  rotateKeys(): Promise<KeyRotationResponse> {
    return this.request<KeyRotationResponse>(
      STATUS_API.rotateKeys.method,
      STATUS_API.rotateKeys.path,
      Math.max(this.timeoutMs, 30_000),
    );
  }

  /** One request; resolves with the parsed 2xx body. */
  request<T>(method: string, path: string, timeoutMs = this.timeoutMs): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const fail = (err: Error): void => {
        if (settled) return;
        settled = true;
        reject(err);
      };
      const req = http.request(
        { socketPath: this.socketPath, path, method, headers: { Accept: 'application/json', Connection: 'close' } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (e) =>
            fail(
              new AgentResponseError(
                method,
                path,
                res.statusCode ?? 0,
                undefined,
                `reading the agent's answer to ${method} ${path}: ${e.message}`,
              ),
            ),
          );
          res.on('end', () => {
            if (settled) return;
            const status = res.statusCode ?? 0;
            const text = Buffer.concat(chunks).toString('utf8');
            let body: unknown;
            try {
              body = text.length === 0 ? undefined : JSON.parse(text);
            } catch {
              fail(
                new AgentResponseError(
                  method,
                  path,
                  status,
                  undefined,
                  `the agent answered ${method} ${path} with HTTP ${status} and a body that is not JSON`,
                ),
              );
              return;
            }
            if (status < 200 || status > 299) {
              const b = body as { error?: unknown; code?: unknown } | undefined;
              const msg = typeof b?.error === 'string' ? b.error : `HTTP ${status}`;
              const code = typeof b?.code === 'string' ? b.code : undefined;
              const detail = status === 404 ? `the agent does not serve ${method} ${path} (older agent?): ${msg}` : msg;
              fail(new AgentResponseError(method, path, status, code, detail));
              return;
            }
            settled = true;
            resolve(body as T);
          });
        },
      );
      req.setTimeout(timeoutMs, () => {
        req.destroy();
        fail(new AgentUnreachableError(this.socketPath, 'ETIMEDOUT'));
      });
      req.on('error', (e: NodeJS.ErrnoException) => {
        fail(new AgentUnreachableError(this.socketPath, e.code ?? 'EIO', { cause: e }));
      });
      req.end();
    });
  }
}
