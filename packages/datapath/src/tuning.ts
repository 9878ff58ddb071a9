import {
  type Datapath as BpfObjectDatapath,
  type DatapathConfig,
  formatCidr,
  IPSEC_MARK_ENCRYPT,
  IPSEC_MARK_MASK,
} from '@veil/bpf';
import { errorMessage, type Steering } from '@veil/agent-core';
import { codeOf, DatapathArgumentError, DatapathMapError } from './errors.js';
import { canonicalPrefix } from './model.js';
import type { DatapathTuning } from './options.js';

/**
 * The `config` map fields `t` sets. Strict CIDRs are not config fields: they are synced into
 * `strict_cidrs` here, before the config is written, so strict mode never sees a stale list.
 */
export function tuningPatch(bpf: BpfObjectDatapath, t: DatapathTuning): Partial<DatapathConfig> {
  const patch: Partial<DatapathConfig> = {};
  if (t.strict) {
    patch.strict = t.strict.enabled;
    patch.allowRemoteNodeIdentities = t.strict.allowRemoteNodeIdentities;
    syncStrictCidrs(bpf, t.strict.cidrs);
  }
  if (t.nodeEncryption !== undefined) patch.nodeEncryption = t.nodeEncryption;
  if (t.mtu !== undefined) patch.mtu = t.mtu;
  if (t.wgPort !== undefined) patch.wgPort = t.wgPort;
  if (t.encryptMark !== undefined) patch.encryptMark = t.encryptMark;
  if (t.encryptMarkMask !== undefined) patch.encryptMarkMask = t.encryptMarkMask;
  return patch;
}

/** Writes `patch` into the pinned `config` map (nothing when empty). */
export function writeConfig(bpf: BpfObjectDatapath, patch: Partial<DatapathConfig>): void {
  if (Object.keys(patch).length === 0) return;
  try {
    bpf.setConfig(patch);
  } catch (e) {
    throw new DatapathMapError('config', 'update', codeOf(e), `writing the datapath config failed: ${errorMessage(e)}`, {
      cause: e,
    });
  }
}

/** Makes `strict_cidrs` hold exactly `cidrs` (by diff). */
function syncStrictCidrs(bpf: BpfObjectDatapath, cidrs: readonly string[]): void {
  const want = new Set(cidrs.map((c, i) => canonicalPrefix(c, `strict.cidrs[${i}]`)));
  const m = bpf.strictCidrs;
  try {
    const have = new Set([...m.keys()].map(formatCidr));
    for (const p of have) if (!want.has(p)) m.delete(p);
    const add = [...want].filter((p) => !have.has(p)).map((p): [string, number] => [p, 1]);
    if (add.length > 0) m.updateMany(add);
  } catch (e) {
    throw new DatapathMapError('strict_cidrs', 'update', codeOf(e), `syncing strict_cidrs failed: ${errorMessage(e)}`, {
      cause: e,
    });
  }
}

/** The config fields a steering mode sets. */
export function steeringConfig(
  s: Steering,
): Pick<DatapathConfig, 'backend' | 'wgIfindex'> & Partial<Pick<DatapathConfig, 'mtu' | 'wgPort'>> {
  if (s === null || typeof s !== 'object') throw new DatapathArgumentError('steering', 'needs an object');
  if (s.kind !== 'none' && s.mtu !== undefined) {
    if (!Number.isInteger(s.mtu) || s.mtu < 68 || s.mtu > 65535)
      throw new DatapathArgumentError('steering.mtu', `needs an integer in [68, 65535], got ${String(s.mtu)}`);
    const { mtu, ...rest } = s;
    return { ...steeringConfig(rest), mtu };
  }
  switch (s.kind) {
    case 'redirect':
      if (!Number.isInteger(s.ifindex) || s.ifindex < 1 || s.ifindex > 0x7fffffff) {
        throw new DatapathArgumentError('steering.ifindex', `needs a positive ifindex, got ${String(s.ifindex)}`);
      }
      if (s.udpPort !== undefined && (!Number.isInteger(s.udpPort) || s.udpPort < 1 || s.udpPort > 65535)) {
        throw new DatapathArgumentError('steering.udpPort', `needs a port in [1, 65535], got ${String(s.udpPort)}`);
      }
      return { backend: 'wireguard', wgIfindex: s.ifindex, ...(s.udpPort !== undefined ? { wgPort: s.udpPort } : {}) };
    case 'mark':
      // The programs compute the mark themselves (bpf/src/mark.ts); another layout cannot be honoured.
      if (s.value !== IPSEC_MARK_ENCRYPT || s.keyIndexShift !== 12 || s.nodeIdShift !== 16 || s.mask >>> 0 !== IPSEC_MARK_MASK) {
        throw new DatapathArgumentError(
          'steering',
          `mark layout {value 0x${(s.value >>> 0).toString(16)}, mask 0x${(s.mask >>> 0).toString(16)}, shifts ${s.keyIndexShift}/${s.nodeIdShift}} ` +
            `differs from the programs' (value 0x${IPSEC_MARK_ENCRYPT.toString(16)}, mask 0x${IPSEC_MARK_MASK.toString(16)}, shifts 12/16)`,
        );
      }
      return { backend: 'ipsec', wgIfindex: 0 };
    case 'none':
      return { backend: 'none', wgIfindex: 0 };
    default:
      throw new DatapathArgumentError(
        'steering.kind',
        `needs 'redirect', 'mark' or 'none', got ${String((s as { kind?: unknown }).kind)}`,
      );
  }
}
