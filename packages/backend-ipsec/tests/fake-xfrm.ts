import { XfrmKernelError, type XfrmPolicy, type XfrmPolicyId, type XfrmState, type XfrmStateId } from 'node-xfrm-bindings';
import type { XfrmOps } from '../src/xfrm-sync.js';

function polKey(p: {
  dir: string;
  selector: { src: string; dst: string };
  mark?: { value: number; mask?: number } | undefined;
}): string {
  return `${p.dir}|${p.selector.src}|${p.selector.dst}|${p.mark ? `${p.mark.value}/${p.mark.mask ?? 0xffffffff}` : ''}`;
}

/**
 * An in-memory SAD/SPD with the kernel's identity rules (states by dst + SPI, policies by
 * direction + selector + mark) and its errors (EEXIST, ESRCH, ENOENT), for host-lane tests of
 * the backend's logic. The kernel lane runs the same logic against real XFRM.
 */
export class FakeXfrm implements XfrmOps {
  readonly states = new Map<string, XfrmState>();
  readonly policies = new Map<string, XfrmPolicy>();
  writes = 0;

  addState(s: XfrmState): Promise<void> {
    const k = `${s.dst}/${s.spi}`;
    if (this.states.has(k)) return Promise.reject(new XfrmKernelError('state add', 17, 'EEXIST', undefined));
    this.writes++;
    this.states.set(k, structuredClone({ ...s, proto: s.proto ?? 'esp', reqid: s.reqid ?? 0 }));
    return Promise.resolve();
  }
  deleteState(id: XfrmStateId): Promise<void> {
    if (!this.states.delete(`${id.dst}/${id.spi}`))
      return Promise.reject(new XfrmKernelError('state delete', 3, 'ESRCH', undefined));
    this.writes++;
    return Promise.resolve();
  }
  listStates(): Promise<XfrmState[]> {
    return Promise.resolve([...this.states.values()].map((s) => structuredClone(s)));
  }
  addPolicy(p: XfrmPolicy): Promise<void> {
    const k = polKey(p);
    if (this.policies.has(k)) return Promise.reject(new XfrmKernelError('policy add', 17, 'EEXIST', undefined));
    this.writes++;
    this.policies.set(k, structuredClone(p));
    return Promise.resolve();
  }
  updatePolicy(p: XfrmPolicy): Promise<void> {
    this.writes++;
    this.policies.set(polKey(p), structuredClone(p));
    return Promise.resolve();
  }
  deletePolicy(id: XfrmPolicyId): Promise<void> {
    if (!('selector' in id) || !this.policies.delete(polKey(id)))
      return Promise.reject(new XfrmKernelError('policy delete', 2, 'ENOENT', undefined));
    this.writes++;
    return Promise.resolve();
  }
  listPolicies(): Promise<XfrmPolicy[]> {
    return Promise.resolve([...this.policies.values()].map((p) => structuredClone(p)));
  }
  close(): void {}
}
