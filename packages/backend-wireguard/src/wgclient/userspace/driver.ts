import { createConnection } from 'node:net';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UapiProtocolError, UapiTransportError, WgDeviceNotFoundError, WgValidationError } from '../../errors.js';
import type { DeviceConfig, WireGuardDevice } from '../../wgtypes/types.js';
import type { DeviceReadOptions, WgDriver } from '../driver.js';
import { GET_REQUEST, encodeSet } from './configure.js';
import { parseGet, parseSetReply } from './parse.js';

/** Where wireguard-go and wg(8) put UAPI sockets by default. */
export const DEFAULT_SOCKET_DIR = '/var/run/wireguard';

/** Options of the userspace (UAPI) driver. */
export interface UserspaceDriverOptions {
  /** Directory holding `<dev>.sock`. Default /var/run/wireguard. */
  socketDir?: string;
  /** Per-operation timeout in ms (connect + request + full reply). Default 10 000. */
  timeoutMs?: number;
  /**
   * Interface index lookup for results (the UAPI does not report it). Default: /sys/class/net of
   * the caller's netns, 0 when the device lives elsewhere.
   */
  ifindexOf?: (name: string) => Promise<number>;
}

const NAME_RE = /^[^/\0\s]{1,15}$/;

async function sysfsIfindex(name: string): Promise<number> {
  try {
    return Number((await readFile(`/sys/class/net/${name}/ifindex`, 'utf8')).trim()) || 0;
  } catch {
    return 0;
  }
}

/**
 * Userspace WireGuard over the cross-platform UAPI (wireguard-go, boringtun): one unix stream
 * connection per operation, `get=1` / `set=1` text. Equivalent of `wg show` / `wg set` against
 * /var/run/wireguard/<dev>.sock.
 */
export class UserspaceDriver implements WgDriver {
  readonly kind = 'userspace' as const;
  readonly socketDir: string;
  private readonly timeoutMs: number;
  private readonly ifindexOf: (name: string) => Promise<number>;

  constructor(opts: UserspaceDriverOptions = {}) {
    this.socketDir = opts.socketDir ?? DEFAULT_SOCKET_DIR;
    if (typeof this.socketDir !== 'string' || this.socketDir.length === 0)
      throw new WgValidationError('socketDir', 'must be a directory path');
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    if (!(Number.isFinite(this.timeoutMs) && this.timeoutMs > 0))
      throw new WgValidationError('timeoutMs', 'must be a positive number');
    this.ifindexOf = opts.ifindexOf ?? sysfsIfindex;
  }

  /** Path of a device's UAPI socket. */
  socketPath(name: string): string {
    if (typeof name !== 'string' || !NAME_RE.test(name))
      throw new WgValidationError('name', 'must be an interface name (1-15 chars, no "/" or whitespace)');
    return join(this.socketDir, `${name}.sock`);
  }

  /** Names with a `<name>.sock` in the socket directory (live or stale). */
  async names(): Promise<string[]> {
    let entries: string[];
    try {
      entries = await readdir(this.socketDir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    return entries
      .filter((f) => f.endsWith('.sock'))
      .map((f) => f.slice(0, -5))
      .filter((n) => NAME_RE.test(n))
      .sort();
  }

  async devices(opts: DeviceReadOptions = {}): Promise<WireGuardDevice[]> {
    const out: WireGuardDevice[] = [];
    for (const name of await this.names()) {
      try {
        out.push(await this.device(name, opts));
      } catch (e) {
        // A stale socket (daemon gone) is not a device.
        if (!(e instanceof WgDeviceNotFoundError)) throw e;
      }
    }
    return out;
  }

  async device(name: string, opts: DeviceReadOptions = {}): Promise<WireGuardDevice> {
    const reply = await this.roundTrip(name, GET_REQUEST);
    return parseGet(reply, { name, ifindex: await this.ifindexOf(name), secrets: opts.secrets === true });
  }

  async configureDevice(name: string, config: DeviceConfig): Promise<void> {
    const request = encodeSet(config); // validates before connecting
    parseSetReply(await this.roundTrip(name, request), name);
  }

  close(): void {
    // Connections are per operation; nothing is held.
  }

  /** Sends one request and reads one reply (up to and including its terminating empty line). */
  private roundTrip(name: string, request: string): Promise<string> {
    const path = this.socketPath(name);
    return new Promise<string>((resolve, reject) => {
      const chunks: string[] = [];
      let done = false;
      let prevLast = '';
      let total = 0;
      const sock = createConnection({ path });
      sock.setEncoding('utf8');
      const finish = (err: Error | undefined): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        sock.destroy();
        if (err) reject(err);
        else resolve(chunks.join(''));
      };
      const timer = setTimeout(() => finish(new UapiTransportError(path, 'ETIMEDOUT')), this.timeoutMs);
      sock.on('connect', () => sock.write(request));
      sock.on('data', (chunk: string) => {
        chunks.push(chunk);
        // The reply ends at its first empty line: "\n\n", or a lone "\n" at the very start.
        const terminated = (prevLast + chunk).includes('\n\n') || (total === 0 && chunk.startsWith('\n'));
        total += chunk.length;
        prevLast = chunk.slice(-1);
        if (total > MAX_REPLY) finish(new UapiProtocolError(`reply larger than ${MAX_REPLY} bytes`, 0));
        else if (terminated) finish(undefined);
      });
      sock.on('end', () => finish(undefined)); // the parser reports a truncated reply
      sock.on('error', (e: NodeJS.ErrnoException) => {
        const code = e.code ?? 'EIO';
        // No socket, or a socket nobody listens on (daemon gone): the device does not exist here.
        if (code === 'ENOENT' || code === 'ECONNREFUSED')
          finish(new WgDeviceNotFoundError(name, [`userspace (${this.socketDir})`], e));
        else finish(new UapiTransportError(path, code, e));
      });
    });
  }
}

// 5,000 peers with a few allowed IPs each are ~2.5 MB; leave ample room but stay bounded.
const MAX_REPLY = 256 * 1024 * 1024;
