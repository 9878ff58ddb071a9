// A fake userspace WireGuard daemon for tests: a unix socket server speaking the UAPI text
// protocol (https://www.wireguard.com/xplatform/). It keeps a model device, applies `set=1`
// with the spec's semantics and answers `get=1` from it. Canned replies can be forced to test
// error paths and garbage.
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ModelPeer {
  publicKey: string; // hex
  presharedKey?: string;
  endpoint?: string;
  keepalive: number;
  allowed: string[];
  rx: number;
  tx: number;
}

export interface ModelDevice {
  privateKey?: string;
  listenPort: number;
  fwmark: number;
  peers: Map<string, ModelPeer>;
}

export function emptyDevice(): ModelDevice {
  return { listenPort: 0, fwmark: 0, peers: new Map() };
}

/** Applies a set=1 body (lines after "set=1") to the model; returns the errno to answer. */
export function applySet(dev: ModelDevice, lines: string[]): number {
  let peer: ModelPeer | undefined;
  let skip = false; // update_only on a missing peer
  for (const line of lines) {
    const eq = line.indexOf('=');
    if (eq <= 0) return 22;
    const k = line.slice(0, eq);
    const v = line.slice(eq + 1);
    if (k === 'public_key') {
      skip = false;
      peer = dev.peers.get(v);
      if (!peer) {
        peer = { publicKey: v, keepalive: 0, allowed: [], rx: 0, tx: 0 };
        dev.peers.set(v, peer);
        (peer as ModelPeer & { fresh?: boolean }).fresh = true;
      } else delete (peer as ModelPeer & { fresh?: boolean }).fresh;
      continue;
    }
    if (!peer) {
      if (k === 'private_key') dev.privateKey = /^0{64}$/.test(v) ? undefined : v;
      else if (k === 'listen_port') dev.listenPort = Number(v);
      else if (k === 'fwmark') dev.fwmark = Number(v);
      else if (k === 'replace_peers') dev.peers.clear();
      else return 22;
      continue;
    }
    switch (k) {
      case 'remove':
        dev.peers.delete(peer.publicKey);
        break;
      case 'update_only':
        if ((peer as ModelPeer & { fresh?: boolean }).fresh) {
          dev.peers.delete(peer.publicKey);
          skip = true;
        }
        break;
      case 'preshared_key':
        if (!skip) peer.presharedKey = /^0{64}$/.test(v) ? undefined : v;
        break;
      case 'endpoint':
        if (!skip) peer.endpoint = v;
        break;
      case 'persistent_keepalive_interval':
        if (!skip) peer.keepalive = Number(v);
        break;
      case 'replace_allowed_ips':
        if (!skip) peer.allowed = [];
        break;
      case 'allowed_ip':
        if (!skip && !peer.allowed.includes(v)) peer.allowed.push(v);
        break;
      default:
        return 22;
    }
  }
  for (const p of dev.peers.values()) delete (p as ModelPeer & { fresh?: boolean }).fresh;
  return 0;
}

/** Serializes the model as a get=1 reply (wireguard-go's key order). */
export function getReply(dev: ModelDevice): string {
  const out: string[] = [];
  if (dev.privateKey) out.push(`private_key=${dev.privateKey}`);
  if (dev.listenPort) out.push(`listen_port=${dev.listenPort}`);
  if (dev.fwmark) out.push(`fwmark=${dev.fwmark}`);
  for (const p of dev.peers.values()) {
    out.push(`public_key=${p.publicKey}`);
    out.push(`preshared_key=${p.presharedKey ?? '0'.repeat(64)}`);
    out.push('protocol_version=1');
    if (p.endpoint) out.push(`endpoint=${p.endpoint}`);
    out.push('last_handshake_time_sec=0', 'last_handshake_time_nsec=0');
    out.push(`tx_bytes=${p.tx}`, `rx_bytes=${p.rx}`);
    out.push(`persistent_keepalive_interval=${p.keepalive}`);
    for (const a of p.allowed) out.push(`allowed_ip=${a}`);
  }
  out.push('errno=0', '', '');
  return out.join('\n');
}

export class FakeUapi {
  readonly requests: string[] = [];
  readonly dev = emptyDevice();
  /** When set, answers every request with this text instead of the model. */
  canned: string | undefined;
  /** When true, closes connections without answering. */
  hangUp = false;
  private server!: Server;
  readonly dir: string;
  readonly path: string;

  private constructor(readonly name: string) {
    this.dir = mkdtempSync(join(tmpdir(), 'wgb-uapi-'));
    this.path = join(this.dir, `${name}.sock`);
  }

  static async start(name = 'wgfake0'): Promise<FakeUapi> {
    const f = new FakeUapi(name);
    f.server = createServer((s) => f.onConn(s));
    await new Promise<void>((r) => f.server.listen(f.path, r));
    return f;
  }

  private onConn(s: Socket): void {
    let buf = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      buf += d;
      for (let end = buf.indexOf('\n\n'); end !== -1; end = buf.indexOf('\n\n')) {
        const req = buf.slice(0, end);
        buf = buf.slice(end + 2);
        this.requests.push(`${req}\n\n`);
        if (this.hangUp) {
          s.destroy();
          return;
        }
        if (this.canned !== undefined) {
          s.write(this.canned);
          continue;
        }
        const lines = req.split('\n');
        if (lines[0] === 'get=1') s.write(getReply(this.dev));
        else if (lines[0] === 'set=1') s.write(`errno=${applySet(this.dev, lines.slice(1))}\n\n`);
        else s.write('errno=22\n\n');
      }
    });
    s.on('error', () => undefined);
  }

  async close(): Promise<void> {
    await new Promise<void>((r) => this.server.close(() => r()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
