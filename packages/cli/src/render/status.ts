import type { AgentStatus } from '@veil/agent-core';
import type { AgentInfo } from '@veil/agent-core/status-api';
import type { Palette } from './color.js';
import type { RenderOptions } from './output.js';
import { humanDuration } from './format.js';
import { renderKeyValues } from './table.js';

/** `veil status -o json`: one document, stable keys (null when the agent did not say). */
export interface StatusView {
  readonly kind: 'VeilStatus';
  readonly node: string;
  readonly version: string | null;
  readonly uptimeSeconds: number | null;
  readonly pid: number | null;
  readonly ready: boolean;
  readonly notReadyReason: string | null;
  readonly synced: boolean;
  readonly encryption: {
    readonly enabled: boolean;
    readonly type: string;
    readonly nodeEncryption: boolean | null;
    readonly strictMode: { readonly enabled: boolean; readonly cidrs: readonly string[] } | null;
  };
  readonly backend: { readonly name: string; readonly driver: string; readonly keyIndex: number | null };
  /** Public key fingerprint and the public annotations; never private material. */
  readonly nodeKey: { readonly fingerprint: string; readonly annotations: Readonly<Record<string, string>> } | null;
  readonly peers: {
    readonly ready: number;
    readonly total: number;
    readonly pending: number;
    readonly refused: number;
    readonly error: number;
  };
  readonly datapath: {
    readonly attached: boolean;
    readonly interfaces:
      readonly { readonly ifname: string; readonly ifindex: number | null; readonly role: string | null }[] | null;
  };
  /**
   * The node's own published annotations as the API shows them (null: the agent did not say).
   * `inApi` false means peers cannot reach this node's pods encrypted.
   */
  readonly ownMaterial: { readonly inApi: boolean | null; readonly missing: readonly string[]; readonly restored: number } | null;
  /** Peers whose pod traffic is affected (displaced by an older node's claim). */
  readonly trafficAffected: readonly string[];
  readonly errors: readonly string[];
}

/** Merges `/v1/status` and (when the agent has it) `/v1/agent` into the status view. */
export function statusView(st: AgentStatus, info: AgentInfo | undefined): StatusView {
  const count = (s: string): number => st.peers.filter((p) => p.state === s).length;
  return {
    kind: 'VeilStatus',
    node: st.node,
    version: info?.version ?? null,
    uptimeSeconds: info?.uptimeSeconds ?? null,
    pid: info?.pid ?? null,
    ready: st.ready,
    notReadyReason: st.notReadyReason ?? null,
    synced: st.synced,
    encryption: {
      enabled: st.encryption.enabled,
      type: st.encryption.type,
      nodeEncryption: info?.encryption.nodeEncryption ?? null,
      strictMode: info ? { enabled: info.encryption.strictMode.enabled, cidrs: [...info.encryption.strictMode.cidrs] } : null,
    },
    backend: { name: st.backend, driver: st.driver, keyIndex: st.keyIndex ?? null },
    nodeKey: info?.localKey ? { fingerprint: info.localKey.fingerprint, annotations: { ...info.localKey.annotations } } : null,
    peers: {
      ready: count('active'),
      total: st.peers.length,
      pending: count('pending'),
      refused: count('refused'),
      error: count('error'),
    },
    datapath: {
      attached: st.datapathAttached,
      interfaces: info
        ? info.datapath.interfaces.map((i) => ({ ifname: i.ifname, ifindex: i.ifindex ?? null, role: i.role ?? null }))
        : null,
    },
    ownMaterial: st.localMaterial
      ? { inApi: st.localMaterial.inApi ?? null, missing: [...st.localMaterial.missing], restored: st.localMaterial.restored }
      : null,
    trafficAffected: st.peers.filter((p) => p.trafficAffected === true).map((p) => p.name),
    errors: [...st.errors],
  };
}

/** How many errors `veil status` lists before summarising the rest. */
export const MAX_ERRORS_SHOWN = 10;

const yesNo = (b: boolean | null): string => (b === null ? 'unknown' : b ? 'enabled' : 'disabled');

/**
 * The one-screen text form. `-o wide` adds the node key's public annotation values, interface
 * indexes, the names of peers whose traffic is affected, and every error (not only the first
 * {@link MAX_ERRORS_SHOWN}).
 */
export function renderStatus(v: StatusView, c: Palette, opts: RenderOptions = { wide: false }): string {
  const pairs: [string, string][] = [];
  pairs.push(['Node', v.node]);
  if (v.version !== null) {
    const up = v.uptimeSeconds !== null ? `, up ${humanDuration(v.uptimeSeconds)}` : '';
    pairs.push(['Agent', `${v.version}${up}${v.pid !== null ? ` (pid ${v.pid})` : ''}`]);
  }
  pairs.push(['Ready', v.ready ? c.green('yes') : c.red(`no: ${v.notReadyReason ?? 'unknown reason'}`)]);
  pairs.push([
    'Encryption',
    v.encryption.enabled ? c.green(`enabled (${v.encryption.type})`) : c.yellow(`disabled (${v.encryption.type})`),
  ]);
  const key = v.backend.keyIndex !== null ? `, key index ${v.backend.keyIndex}` : '';
  pairs.push(['Backend', `${v.backend.name}, driver ${v.backend.driver}${key}`]);
  if (v.nodeKey) {
    const names = Object.keys(v.nodeKey.annotations);
    pairs.push(['Node key', `${v.nodeKey.fingerprint}${names.length > 0 ? ` (${names.join(', ')})` : ''}`]);
    if (opts.wide) for (const [k, val] of Object.entries(v.nodeKey.annotations)) pairs.push([`  ${k}`, val]);
  } else pairs.push(['Node key', c.dim('none published')]);
  const p = v.peers;
  const affected = v.trafficAffected.length > 0 ? `${v.trafficAffected.length} with traffic affected` : '';
  const extra = [
    p.pending > 0 ? `${p.pending} pending` : '',
    p.refused > 0 ? `${p.refused} refused` : '',
    affected,
    p.error > 0 ? `${p.error} failing` : '',
  ].filter((s) => s !== '');
  const peerText = `${p.ready}/${p.total} ready${extra.length > 0 ? ` (${extra.join(', ')})` : ''}`;
  pairs.push(['Peers', p.ready === p.total ? c.green(peerText) : c.yellow(peerText)]);
  if (opts.wide && v.trafficAffected.length > 0) pairs.push(['Traffic affected', v.trafficAffected.join(', ')]);
  // Shown when something is off: own annotations missing from the API, or restored by the agent.
  const om = v.ownMaterial;
  if (om && (om.inApi === false || om.restored > 0)) {
    const restored = om.restored > 0 ? `restored ${om.restored}×` : '';
    pairs.push([
      'Own material',
      om.inApi === false
        ? c.red(`missing from the API: ${om.missing.join(', ')}${restored ? `; ${restored}` : ''}`)
        : c.yellow(`in the API (${restored})`),
    ]);
  }
  if (v.encryption.strictMode) {
    const sm = v.encryption.strictMode;
    pairs.push(['Strict mode', sm.enabled ? `enabled${sm.cidrs.length > 0 ? ` (${sm.cidrs.join(', ')})` : ''}` : 'disabled']);
  }
  pairs.push(['Node encryption', yesNo(v.encryption.nodeEncryption)]);
  const ifs = v.datapath.interfaces;
  const ifName = (i: NonNullable<typeof ifs>[number]): string =>
    opts.wide && i.ifindex !== null ? `${i.ifname}#${i.ifindex}` : i.ifname;
  const ifText = ifs && ifs.length > 0 ? ` (${ifs.map((i) => `${ifName(i)}${i.role ? ` [${i.role}]` : ''}`).join(', ')})` : '';
  pairs.push(['Datapath', v.datapath.attached ? c.green(`attached${ifText}`) : c.red(`not attached${ifText}`)]);
  pairs.push(['Errors', v.errors.length === 0 ? 'none' : c.red(String(v.errors.length))]);
  let out = renderKeyValues(pairs);
  const shown = opts.wide ? v.errors.length : MAX_ERRORS_SHOWN;
  for (const e of v.errors.slice(0, shown)) out += `  - ${e}\n`;
  if (v.errors.length > shown) out += `  … and ${v.errors.length - MAX_ERRORS_SHOWN} more (veil status -o wide)\n`;
  return out;
}
