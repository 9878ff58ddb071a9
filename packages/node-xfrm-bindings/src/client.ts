import { DumpInterruptedError, NetlinkError, NetlinkSocket, type NlMsg } from '@veil/netlink';
import { XfrmError, XfrmKernelError, XfrmValidationError } from './errors.js';
import {
  XFRM_MSG_DELPOLICY,
  XFRM_MSG_DELSA,
  XFRM_MSG_FLUSHPOLICY,
  XFRM_MSG_FLUSHSA,
  XFRM_MSG_GETPOLICY,
  XFRM_MSG_GETSA,
  XFRM_MSG_GETSPDINFO,
  XFRM_MSG_NEWPOLICY,
  XFRM_MSG_NEWSA,
  XFRM_MSG_NEWSPDINFO,
  XFRM_MSG_UPDPOLICY,
  XFRM_MSG_UPDSA,
} from './nl/constants.js';
import { encodeStruct } from './nl/struct.js';
import { xfrmUsersaFlush } from './nl/usersa-flush.js';
import {
  decodePolicyPayload,
  encodePolicyIdPayload,
  encodePolicyPayload,
  policyIdKey,
  policyIdPayloadByIndex,
  policyInfoKey,
  type XfrmPolicy,
  type XfrmPolicyId,
} from './policy.js';
import {
  decodeSpdInfoPayload,
  encodeGetSpdInfoPayload,
  encodeSetSpdPayload,
  type XfrmSpdHashThresholds,
  type XfrmSpdInfo,
} from './spd.js';
import {
  PROTO_NUM,
  decodeStatePayload,
  encodeStateIdPayload,
  encodeStatePayload,
  type XfrmProto,
  type XfrmState,
  type XfrmStateId,
} from './state.js';
import { checkOneOf } from './validate.js';

/** Options of `XfrmClient.open`. */
export interface XfrmClientOptions {
  /** Network namespace: a name under /run/netns, a path (`/run/netns/x`, `/proc/<pid>/ns/net`) or an fd. */
  netns?: string | number;
  /** Per-request timeout in ms (inactivity timeout for dumps). Default 30 000. */
  timeoutMs?: number;
  /** Requests in flight at once on the socket (batch operations fill this window). Default: @veil/netlink's (64). */
  maxInFlight?: number;
}

/** Options of `deletePolicies`. */
export interface XfrmDeleteBatchOptions {
  /**
   * Resolve selector ids to kernel indexes with one dump first, then delete by index (a hash
   * lookup in the kernel instead of an O(N) inexact-bin walk per delete). Same result and
   * errors. Default: true for 64 or more ids.
   */
  resolveIndexes?: boolean;
}

const RESOLVE_INDEXES_FROM = 64;

const DUMP_RETRIES = 3;

/**
 * XFRM (IPsec) configuration over NETLINK_XFRM: states (SAs), policies (SPD) and SPD settings.
 * One client owns one netlink socket; requests may run concurrently. Call `close()` when done.
 *
 * Every method validates its arguments before any syscall (XfrmValidationError names the field)
 * and reports kernel refusals as XfrmKernelError (errno code + extack message).
 */
export class XfrmClient {
  private constructor(private readonly sock: NetlinkSocket) {}

  /**
   * Opens a NETLINK_XFRM socket, optionally inside a network namespace.
   * Needs CAP_NET_ADMIN in that namespace for anything but reads.
   */
  static open(opts: XfrmClientOptions = {}): XfrmClient {
    const sockOpts: { netns?: string | number; timeoutMs?: number; maxInFlight?: number } = {};
    if (opts.netns !== undefined) sockOpts.netns = opts.netns;
    if (opts.timeoutMs !== undefined) sockOpts.timeoutMs = opts.timeoutMs;
    if (opts.maxInFlight !== undefined) sockOpts.maxInFlight = opts.maxInFlight;
    return new XfrmClient(NetlinkSocket.open('XFRM', sockOpts));
  }

  /** Closes the socket; pending requests fail. Idempotent. */
  close(): void {
    this.sock.close();
  }

  // ---- states -------------------------------------------------------------------------------

  /**
   * Adds an SA; fails with EEXIST if (dst, spi, proto) exists.
   * `ip xfrm state add src A dst B proto esp spi 0x... reqid 1 mode tunnel aead 'rfc4106(gcm(aes))' 0x... 128`
   */
  async addState(state: XfrmState): Promise<void> {
    await this.call('state add', XFRM_MSG_NEWSA, encodeStatePayload(state));
  }

  /**
   * Replaces an existing SA (ENOENT/ESRCH if it does not exist). Algorithms and addresses cannot
   * change (the kernel refuses); limits, marks and selector can.
   * `ip xfrm state update src A dst B proto esp spi 0x... ...`
   */
  async updateState(state: XfrmState): Promise<void> {
    await this.call('state update', XFRM_MSG_UPDSA, encodeStatePayload(state));
  }

  /** Deletes one SA. `ip xfrm state delete src A dst B proto esp spi 0x...` */
  async deleteState(id: XfrmStateId): Promise<void> {
    await this.call('state delete', XFRM_MSG_DELSA, encodeStateIdPayload(id));
  }

  /**
   * Reads one SA (with counters), or undefined if it does not exist.
   * `ip xfrm state get src A dst B proto esp spi 0x...`
   */
  async getState(id: XfrmStateId): Promise<XfrmState | undefined> {
    const payload = encodeStateIdPayload(id);
    try {
      const msgs = await this.sock.request({ type: XFRM_MSG_GETSA, payload, operation: 'XFRM_MSG_GETSA' }, { ack: false });
      const m = msgs.find((x) => x.type === XFRM_MSG_NEWSA);
      return m ? decodeStatePayload(m.payload) : undefined;
    } catch (e) {
      if (e instanceof NetlinkError && (e.code === 'ESRCH' || e.code === 'ENOENT')) return undefined;
      throw wrap('state get', e);
    }
  }

  /** Lists every SA. `ip xfrm state list` */
  async listStates(): Promise<XfrmState[]> {
    const msgs = await this.dumpWithRetry('state list', XFRM_MSG_GETSA);
    return msgs.filter((m) => m.type === XFRM_MSG_NEWSA).map((m) => decodeStatePayload(m.payload));
  }

  /** Deletes every SA (of one protocol if given). `ip xfrm state flush [proto esp]` */
  async flushStates(opts: { proto?: XfrmProto } = {}): Promise<void> {
    // proto 0 means every protocol (xfrm_id_proto_match).
    const proto = opts.proto === undefined ? 0 : PROTO_NUM[checkOneOf('proto', opts.proto, ['esp', 'ah'] as const)];
    await this.call('state flush', XFRM_MSG_FLUSHSA, Buffer.from(encodeStruct(xfrmUsersaFlush, { proto })));
  }

  // ---- policies -----------------------------------------------------------------------------

  /**
   * Adds a policy; fails with EEXIST if one with the same selector, dir, mark and if_id exists.
   * `ip xfrm policy add src 10.0.0.0/24 dst 10.1.0.0/24 dir out tmpl src A dst B proto esp reqid 1 mode tunnel`
   */
  async addPolicy(policy: XfrmPolicy): Promise<void> {
    await this.call('policy add', XFRM_MSG_NEWPOLICY, encodePolicyPayload(policy));
  }

  /** Adds or replaces a policy. `ip xfrm policy update src ... dst ... dir out ...` */
  async updatePolicy(policy: XfrmPolicy): Promise<void> {
    await this.call('policy update', XFRM_MSG_UPDPOLICY, encodePolicyPayload(policy));
  }

  /** Deletes one policy. `ip xfrm policy delete src ... dst ... dir out [mark M mask K]` (or `index N dir out`) */
  async deletePolicy(id: XfrmPolicyId): Promise<void> {
    await this.call('policy delete', XFRM_MSG_DELPOLICY, encodePolicyIdPayload(id));
  }

  /** Reads one policy, or undefined if none matches. `ip xfrm policy get src ... dst ... dir out` */
  async getPolicy(id: XfrmPolicyId): Promise<XfrmPolicy | undefined> {
    const payload = encodePolicyIdPayload(id);
    try {
      const msgs = await this.sock.request(
        { type: XFRM_MSG_GETPOLICY, payload, operation: 'XFRM_MSG_GETPOLICY' },
        { ack: false },
      );
      const m = msgs.find((x) => x.type === XFRM_MSG_NEWPOLICY);
      return m ? decodePolicyPayload(m.payload) : undefined;
    } catch (e) {
      if (e instanceof NetlinkError && e.code === 'ENOENT') return undefined;
      throw wrap('policy get', e);
    }
  }

  /** Lists every (main-type) policy. `ip xfrm policy list` */
  async listPolicies(): Promise<XfrmPolicy[]> {
    const msgs = await this.dumpWithRetry('policy list', XFRM_MSG_GETPOLICY);
    return msgs.filter((m) => m.type === XFRM_MSG_NEWPOLICY).map((m) => decodePolicyPayload(m.payload));
  }

  /** Deletes every policy. `ip xfrm policy flush` */
  async flushPolicies(): Promise<void> {
    await this.call('policy flush', XFRM_MSG_FLUSHPOLICY, Buffer.alloc(0));
  }

  /**
   * Adds many policies, several requests per datagram and many in flight (what `ip -batch` does
   * one round trip at a time). All policies are validated before the first is sent
   * (XfrmValidationError field `[i].…`). The kernel handles every item on its own; if any were
   * refused, XfrmKernelError is thrown for the lowest failing `index` after all have settled
   * (the others are in place).
   */
  async addPolicies(policies: readonly XfrmPolicy[]): Promise<void> {
    const payloads = policies.map((p, i) => prefixField(i, () => encodePolicyPayload(p)));
    await this.pipeline('policy add', XFRM_MSG_NEWPOLICY, payloads);
  }

  /** Deletes many policies, pipelined like `addPolicies`. */
  async deletePolicies(ids: readonly XfrmPolicyId[], opts: XfrmDeleteBatchOptions = {}): Promise<void> {
    let payloads = ids.map((p, i) => prefixField(i, () => encodePolicyIdPayload(p)));
    const byIndex = opts.resolveIndexes ?? payloads.length >= RESOLVE_INDEXES_FROM;
    if (byIndex) {
      // A selector delete makes the kernel prune the policy's inexact bin, which walks every
      // policy in it: O(N) per delete. A delete by index is a hash lookup. One dump maps
      // (selector, dir, mark, if_id) to indexes; ids not found keep their selector (and get
      // the kernel's own ENOENT).
      const indexes = new Map<string, number>();
      for (const m of await this.dumpWithRetry('policy list', XFRM_MSG_GETPOLICY)) {
        if (m.type !== XFRM_MSG_NEWPOLICY) continue;
        const { key, index } = policyInfoKey(m.payload);
        indexes.set(key, index);
      }
      payloads = payloads.map((p) => {
        const key = policyIdKey(p);
        const index = key === undefined ? undefined : indexes.get(key);
        return index === undefined ? p : policyIdPayloadByIndex(p, index);
      });
    }
    await this.pipeline('policy delete', XFRM_MSG_DELPOLICY, payloads);
  }

  /** Adds many states, pipelined like `addPolicies`. */
  async addStates(states: readonly XfrmState[]): Promise<void> {
    const payloads = states.map((s, i) => prefixField(i, () => encodeStatePayload(s)));
    await this.pipeline('state add', XFRM_MSG_NEWSA, payloads);
  }

  // ---- SPD settings -------------------------------------------------------------------------

  /** Policy counts, hash table size and hash thresholds. `ip xfrm policy count` */
  async getSpdInfo(): Promise<XfrmSpdInfo> {
    try {
      const msgs = await this.sock.request(
        { type: XFRM_MSG_GETSPDINFO, payload: encodeGetSpdInfoPayload(), operation: 'XFRM_MSG_GETSPDINFO' },
        { ack: false },
      );
      const m = msgs.find((x) => x.type === XFRM_MSG_NEWSPDINFO);
      if (!m) throw new XfrmError('GETSPDINFO: the kernel sent no XFRM_MSG_NEWSPDINFO reply');
      return decodeSpdInfoPayload(m.payload);
    } catch (e) {
      throw wrap('policy count', e);
    }
  }

  /**
   * Sets the SPD hash thresholds (the kernel rebuilds its policy hash).
   * `ip xfrm policy set hthresh4 LBITS RBITS hthresh6 LBITS RBITS`
   */
  async setSpdHashThresholds(thresholds: XfrmSpdHashThresholds): Promise<void> {
    await this.call('policy set', XFRM_MSG_NEWSPDINFO, encodeSetSpdPayload(thresholds));
  }

  // ---- plumbing -----------------------------------------------------------------------------

  private async call(op: string, type: number, payload: Buffer): Promise<NlMsg[]> {
    try {
      return await this.sock.request({ type, payload, operation: op });
    } catch (e) {
      throw wrap(op, e);
    }
  }

  private async dumpWithRetry(op: string, type: number): Promise<NlMsg[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.sock.dump({ type, payload: Buffer.alloc(0), operation: op });
      } catch (e) {
        // The table changed under the dump; a fresh dump is consistent again.
        if (e instanceof DumpInterruptedError && attempt < DUMP_RETRIES) continue;
        throw wrap(op, e);
      }
    }
  }

  private async pipeline(op: string, type: number, payloads: readonly Buffer[]): Promise<void> {
    // requestMany packs the messages into few datagrams within the socket's in-flight window;
    // the kernel processes and ACKs each message on its own, so every item is attempted.
    const results = await this.sock.requestMany(payloads.map((payload) => ({ type, payload, operation: op })));
    const failed = results.findIndex((r) => r.status === 'rejected');
    if (failed >= 0) throw wrap(op, (results[failed] as PromiseRejectedResult).reason, failed);
  }
}

function prefixField<T>(index: number, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof XfrmValidationError) throw new XfrmValidationError(`[${index}].${e.field}`, e.reason);
    throw e;
  }
}

function wrap(op: string, e: unknown, index?: number): unknown {
  if (e instanceof NetlinkError) {
    const opts: { cause: unknown; index?: number } = { cause: e };
    if (index !== undefined) opts.index = index;
    return new XfrmKernelError(op, e.errno, e.code, e.extAckMessage, opts);
  }
  return e;
}
