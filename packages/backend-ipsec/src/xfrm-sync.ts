import { XfrmKernelError, type XfrmClient, type XfrmPolicy, type XfrmState, type XfrmTemplate } from 'node-xfrm-bindings';
import { IpsecNotSupportedError, IpsecXfrmError } from './errors.js';
import { isOurPolicy, isOurState, policyOwner, stateOwner, type Owner, type XfrmObjects } from './model.js';

/**
 * The XfrmClient operations the backend uses (tests substitute an in-memory SAD/SPD). The batch
 * adds are optional: with them, `applyPlan` pipelines each phase's additions (many requests in
 * flight, as `ip -batch` sends them one at a time); without them it writes one by one.
 */
export type XfrmOps = Pick<
  XfrmClient,
  'addState' | 'deleteState' | 'listStates' | 'addPolicy' | 'updatePolicy' | 'deletePolicy' | 'listPolicies' | 'close'
> &
  Partial<Pick<XfrmClient, 'addStates' | 'addPolicies'>>;

/** Identity of a state in the kernel: destination, SPI (always ESP here). */
export function stateId(s: Pick<XfrmState, 'dst' | 'spi'>): string {
  return `${s.dst}/spi 0x${s.spi.toString(16)}`;
}

/** Identity of a policy in the kernel: direction, selector, mark. */
export function policyId(p: Pick<XfrmPolicy, 'dir' | 'selector' | 'mark'>): string {
  const m = p.mark ? ` mark 0x${(p.mark.value >>> 0).toString(16)}/0x${((p.mark.mask ?? 0xffffffff) >>> 0).toString(16)}` : '';
  return `${p.dir} ${p.selector.src} -> ${p.selector.dst}${m}`;
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (!a || !b) return a === b;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function sameMark(a: XfrmState['mark'], b: XfrmState['mark']): boolean {
  if (!a || !b) return a === b;
  return a.value >>> 0 === b.value >>> 0 && (a.mask ?? 0xffffffff) >>> 0 === (b.mask ?? 0xffffffff) >>> 0;
}

/** True when the kernel's state `actual` is what `desired` asks for (keys included). */
export function sameState(desired: XfrmState, actual: XfrmState): boolean {
  return (
    desired.src === actual.src &&
    desired.dst === actual.dst &&
    desired.spi === actual.spi &&
    desired.mode === actual.mode &&
    (desired.reqid ?? 0) === (actual.reqid ?? 0) &&
    (desired.esn ?? false) === (actual.esn ?? false) &&
    (desired.replayWindow ?? 0) === (actual.replayWindow ?? 0) &&
    sameMark(desired.mark, actual.mark) &&
    actual.outputMark === undefined &&
    actual.selector === undefined &&
    desired.aead?.name === actual.aead?.name &&
    desired.aead?.icvLen === actual.aead?.icvLen &&
    sameBytes(desired.aead?.key, actual.aead?.key) &&
    desired.auth?.name === actual.auth?.name &&
    desired.auth?.truncLen === actual.auth?.truncLen &&
    sameBytes(desired.auth?.key, actual.auth?.key) &&
    desired.crypt?.name === actual.crypt?.name &&
    sameBytes(desired.crypt?.key, actual.crypt?.key)
  );
}

function isZero(addr: string | undefined): boolean {
  return addr === undefined || addr === '0.0.0.0' || addr === '::';
}

function sameTemplate(a: XfrmTemplate, b: XfrmTemplate): boolean {
  const addr = (x: string | undefined, y: string | undefined): boolean => (isZero(x) && isZero(y)) || x === y;
  return (
    addr(a.src, b.src) &&
    addr(a.dst, b.dst) &&
    (a.proto ?? 'esp') === (b.proto ?? 'esp') &&
    (a.spi ?? 0) === (b.spi ?? 0) &&
    a.mode === b.mode &&
    (a.reqid ?? 0) === (b.reqid ?? 0) &&
    (a.optional ?? false) === (b.optional ?? false)
  );
}

/** True when the kernel's policy `actual` is what `desired` asks for. */
export function samePolicy(desired: XfrmPolicy, actual: XfrmPolicy): boolean {
  const dt = desired.templates ?? [];
  const at = actual.templates ?? [];
  return (
    (desired.priority ?? 0) === (actual.priority ?? 0) &&
    (desired.action ?? 'allow') === (actual.action ?? 'allow') &&
    actual.ifId === undefined &&
    dt.length === at.length &&
    dt.every((t, i) => sameTemplate(t, at[i]!))
  );
}

/** What to write to make the kernel match. Descriptions name objects, never keys. */
export interface XfrmPlan {
  readonly addStates: XfrmState[];
  /** Present with other keys/fields: deleted then added (the kernel cannot change an SA's keys). */
  readonly replaceStates: XfrmState[];
  readonly deleteStates: XfrmState[];
  readonly addPolicies: XfrmPolicy[];
  /** Present with other templates/priority/action: XFRM_MSG_UPDPOLICY. */
  readonly updatePolicies: XfrmPolicy[];
  readonly deletePolicies: XfrmPolicy[];
}

export function planSize(p: XfrmPlan): number {
  return (
    p.addStates.length +
    p.replaceStates.length +
    p.deleteStates.length +
    p.addPolicies.length +
    p.updatePolicies.length +
    p.deletePolicies.length
  );
}

/**
 * Compares `desired` with the kernel's dump (`actual`), restricted to this backend's objects
 * whose owner `inScope` accepts (other software's states and policies are never touched).
 * `keep` protects existing objects from deletion (e.g. adopted keys not yet reclaimed).
 */
export function planDiff(
  desired: XfrmObjects,
  actual: XfrmObjects,
  inScope: (o: Owner) => boolean,
  keep: (o: XfrmState | XfrmPolicy) => boolean = () => false,
): XfrmPlan {
  const plan: XfrmPlan = {
    addStates: [],
    replaceStates: [],
    deleteStates: [],
    addPolicies: [],
    updatePolicies: [],
    deletePolicies: [],
  };
  const haveStates = new Map<string, XfrmState>();
  for (const s of actual.states) if (isOurState(s) && inScope(stateOwner(s))) haveStates.set(stateId(s), s);
  const wantStates = new Set<string>();
  for (const s of desired.states) {
    const id = stateId(s);
    wantStates.add(id);
    const have = haveStates.get(id);
    if (!have) plan.addStates.push(s);
    else if (!sameState(s, have)) plan.replaceStates.push(s);
  }
  for (const [id, s] of haveStates) if (!wantStates.has(id) && !keep(s)) plan.deleteStates.push(s);

  const havePolicies = new Map<string, XfrmPolicy>();
  for (const p of actual.policies) if (isOurPolicy(p) && inScope(policyOwner(p))) havePolicies.set(policyId(p), p);
  const wantPolicies = new Set<string>();
  for (const p of desired.policies) {
    const id = policyId(p);
    wantPolicies.add(id);
    const have = havePolicies.get(id);
    if (!have) plan.addPolicies.push(p);
    else if (!samePolicy(p, have)) plan.updatePolicies.push(p);
  }
  for (const [id, p] of havePolicies) if (!wantPolicies.has(id) && !keep(p)) plan.deletePolicies.push(p);
  return plan;
}

function notSupported(err: unknown): boolean {
  if (!(err instanceof XfrmKernelError)) return false;
  return err.code === 'EPROTONOSUPPORT' || err.code === 'ENOSYS' || /Requested type not found/i.test(err.extack ?? '');
}

function wrap(op: string, object: string, err: unknown): Error {
  if (op === 'state add' && notSupported(err)) {
    const e = err as XfrmKernelError;
    return new IpsecNotSupportedError(`cannot install ESP state ${object}`, e.extack ?? e.code, { cause: err });
  }
  return new IpsecXfrmError(op, object, err instanceof Error ? err.message : String(err), { cause: err });
}

/** One write applied, for logs and repair metrics. */
export interface XfrmChange {
  readonly op: 'state add' | 'state replace' | 'state delete' | 'policy add' | 'policy update' | 'policy delete';
  readonly object: string;
}

/**
 * Writes a plan in a fail-closed order: the BLOCK and IN/FWD policies first (a plan's base
 * policies come first in `addPolicies`), then states (before the policies that use them), then
 * per-peer policies; deletions last, policies before their states. A marked packet therefore
 * always meets either a working SA or the BLOCK policy.
 *
 * Additions within a phase do not depend on each other, so with the client's batch operations
 * a phase goes out pipelined; the phases still follow one another. A refused item fails the
 * phase (naming that item) after the kernel has handled the rest of it, and later phases are
 * not written: the next diff retries.
 */
export async function applyPlan(x: XfrmOps, plan: XfrmPlan): Promise<XfrmChange[]> {
  const done: XfrmChange[] = [];
  const step = async (op: XfrmChange['op'], object: string, f: () => Promise<void>): Promise<void> => {
    try {
      await f();
    } catch (err) {
      throw wrap(op === 'state replace' ? 'state add' : op, object, err);
    }
    done.push({ op, object });
  };
  const adds = async <T>(
    op: 'state add' | 'policy add',
    items: readonly T[],
    id: (t: T) => string,
    one: (t: T) => Promise<void>,
    many: ((ts: readonly T[]) => Promise<void>) | undefined,
  ): Promise<void> => {
    if (!many || items.length < 2) {
      for (const t of items) await step(op, id(t), () => one(t));
      return;
    }
    try {
      await many(items);
    } catch (err) {
      const i = err instanceof XfrmKernelError && err.index !== undefined ? err.index : 0;
      throw wrap(op, id(items[i] ?? (items[0] as T)), err);
    }
    for (const t of items) done.push({ op, object: id(t) });
  };
  const addPolicies = x.addPolicies?.bind(x);
  const block = plan.addPolicies.filter((p) => p.action === 'block');
  const rest = plan.addPolicies.filter((p) => p.action !== 'block');
  await adds('policy add', block, policyId, (p) => x.addPolicy(p), addPolicies);
  await adds('state add', plan.addStates, stateId, (s) => x.addState(s), x.addStates?.bind(x));
  for (const s of plan.replaceStates) {
    await step('state replace', stateId(s), async () => {
      await x.deleteState({ dst: s.dst, spi: s.spi, proto: 'esp', ...(s.mark ? { mark: s.mark } : {}) }).catch((err: unknown) => {
        if (!(err instanceof XfrmKernelError && err.code === 'ESRCH')) throw err;
      });
      await x.addState(s);
    });
  }
  await adds('policy add', rest, policyId, (p) => x.addPolicy(p), addPolicies);
  for (const p of plan.updatePolicies) await step('policy update', policyId(p), () => x.updatePolicy(p));
  for (const p of plan.deletePolicies) {
    await step('policy delete', policyId(p), () =>
      x.deletePolicy({ selector: p.selector, dir: p.dir, ...(p.mark ? { mark: p.mark } : {}) }).catch((err: unknown) => {
        if (!(err instanceof XfrmKernelError && err.code === 'ENOENT')) throw err;
      }),
    );
  }
  for (const s of plan.deleteStates) {
    await step('state delete', stateId(s), () =>
      x.deleteState({ dst: s.dst, spi: s.spi, proto: 'esp', ...(s.mark ? { mark: s.mark } : {}) }).catch((err: unknown) => {
        if (!(err instanceof XfrmKernelError && err.code === 'ESRCH')) throw err;
      }),
    );
  }
  return done;
}

/**
 * The dump `view` after `plan` was written successfully: what {@link applyPlan} did, applied to
 * a copy (identities as in {@link planDiff}: states by destination and SPI, policies by
 * direction, selector and mark).
 */
export function applyPlanToView(view: XfrmObjects, plan: XfrmPlan): XfrmObjects {
  const states = new Map(view.states.map((s) => [stateId(s), s]));
  for (const s of [...plan.deleteStates, ...plan.replaceStates]) states.delete(stateId(s));
  for (const s of [...plan.addStates, ...plan.replaceStates]) states.set(stateId(s), s);
  const policies = new Map(view.policies.map((p) => [policyId(p), p]));
  for (const p of plan.deletePolicies) policies.delete(policyId(p));
  for (const p of [...plan.addPolicies, ...plan.updatePolicies]) policies.set(policyId(p), p);
  return { states: [...states.values()], policies: [...policies.values()] };
}

/** Dumps the kernel's states and policies. */
export async function dumpXfrm(x: XfrmOps): Promise<XfrmObjects> {
  const [states, policies] = await Promise.all([x.listStates(), x.listPolicies()]);
  return { states, policies };
}
