import { IPSEC_MARK_ENCRYPT, IPSEC_MARK_MASK, decodeIpsecMark, ipsecMark } from '@veil/bpf';
import { describe, expect, it } from 'vitest';
import { IpsecPeerError } from '../src/errors.js';
import { parseKeyLine } from '../src/keyfile.js';
import {
  MARK_ENCRYPT,
  MARK_MASK_PEER,
  PRIORITY_BLOCK,
  PRIORITY_PEER,
  REPLAY_WINDOW,
  VEIL_REQID,
  basePolicies,
  decodeSpi,
  encryptMark,
  isOurPolicy,
  isOurState,
  peerObjects,
  policyOwner,
  spiFor,
  stateKeyIndex,
  stateOwner,
} from '../src/model.js';
import { planDiff, planSize } from '../src/xfrm-sync.js';

const key3 = parseKeyLine(`3+ rfc4106(gcm(aes)) ${'a1'.repeat(20)} 128`);
const key4 = parseKeyLine(`4+ rfc4106(gcm(aes)) ${'b2'.repeat(20)} 128`);
const local = { nodeId: 1, ipv4: '192.168.50.1', ipv6: 'fd50::1', bootId: '0b1e5c1d-3f0a-4c7e-9d2b-6a5f4e3d2c1b', epoch: 0 };
const peer = {
  name: 'n2',
  nodeId: 2,
  ipv4: '192.168.50.2',
  ipv6: 'fd50::2',
  bootId: 'f7e6d5c4-b3a2-4190-8877-665544332211',
  epoch: 0,
};

describe('mark layout', () => {
  it("equals the BPF programs' (bpf/src/mark.ts) for every key index and sample node IDs", () => {
    expect(MARK_ENCRYPT).toBe(IPSEC_MARK_ENCRYPT);
    expect(MARK_MASK_PEER).toBe(IPSEC_MARK_MASK);
    for (let keyIndex = 0; keyIndex <= 15; keyIndex++) {
      for (const nodeId of [1, 2, 255, 256, 4097, 65535]) {
        expect(encryptMark(keyIndex, nodeId)).toBe(ipsecMark({ keyIndex, nodeId }));
        expect(decodeIpsecMark(encryptMark(keyIndex, nodeId))).toEqual({ keyIndex, nodeId });
      }
    }
  });
  it('SPIs name the sender and the key index and stay above the reserved 1..255', () => {
    expect(spiFor(1, 3)).toBe(0x103);
    expect(spiFor(65535, 15)).toBe(0xffff0f);
    expect(decodeSpi(spiFor(4097, 9))).toEqual({ nodeId: 4097, keyIndex: 9 });
    expect(spiFor(1, 1)).toBeGreaterThan(255);
  });
});

describe('desired objects', () => {
  it('per family and key index: OUT state + OUT policy with the peer mark, IN state named by the peer SPI; ESN everywhere', () => {
    const o = peerObjects(local, peer, [key3]);
    expect(o.states).toHaveLength(4);
    expect(o.policies).toHaveLength(2);
    const out4 = o.states.find((s) => s.dst === peer.ipv4)!;
    expect(out4).toMatchObject({
      src: local.ipv4,
      spi: 0x103,
      reqid: VEIL_REQID,
      mode: 'tunnel',
      esn: true,
      replayWindow: REPLAY_WINDOW,
      mark: { value: encryptMark(3, 2), mask: MARK_MASK_PEER },
    });
    const in6 = o.states.find((s) => s.dst === local.ipv6)!;
    expect(in6).toMatchObject({ src: peer.ipv6, spi: 0x203, esn: true });
    expect(in6.mark).toBeUndefined();
    expect(in6.aead?.key).not.toEqual(o.states.find((s) => s.dst === peer.ipv6)!.aead?.key);
    const pol4 = o.policies.find((p) => p.selector.dst === '0.0.0.0/0')!;
    expect(pol4).toMatchObject({
      dir: 'out',
      priority: PRIORITY_PEER,
      mark: { value: encryptMark(3, 2) },
      templates: [{ src: local.ipv4, dst: peer.ipv4, mode: 'tunnel', reqid: VEIL_REQID }],
    });
    for (const s of o.states) {
      expect(isOurState(s)).toBe(true);
      expect(stateOwner(s)).toEqual({ kind: 'peer', nodeId: 2 });
      expect(stateKeyIndex(s)).toBe(3);
    }
    for (const p of o.policies) {
      expect(isOurPolicy(p)).toBe(true);
      expect(policyOwner(p)).toEqual({ kind: 'peer', nodeId: 2 });
    }
  });
  it('two key indexes (rotation) give two sets that coexist (different SPIs and marks)', () => {
    const o = peerObjects(local, peer, [key3, key4]);
    expect(o.states).toHaveLength(8);
    expect(new Set(o.states.map((s) => `${s.dst}/${s.spi}`)).size).toBe(8);
    expect(new Set(o.policies.map((p) => `${p.selector.dst}/${p.mark?.value}`)).size).toBe(4);
  });
  it('only the families both nodes have', () => {
    const o = peerObjects({ ...local, ipv6: undefined }, peer, [key3]);
    expect(o.states.every((s) => !s.dst.includes(':'))).toBe(true);
    expect(() => peerObjects({ ...local, ipv4: undefined }, { ...peer, ipv6: undefined }, [key3])).toThrow(IpsecPeerError);
  });
  it('refuses a peer without a node ID or with ours', () => {
    expect(() => peerObjects(local, { ...peer, nodeId: 0 }, [key3])).toThrow(/node ID 1\.\.65535/);
    expect(() => peerObjects(local, { ...peer, nodeId: 1 }, [key3])).toThrow(/own node ID/);
  });
  it('base policies: BLOCK for any encrypt mark, below the peer policies; optional IN/FWD templates', () => {
    const b = basePolicies();
    expect(b).toHaveLength(6);
    const block = b.filter((p) => p.action === 'block');
    expect(block.map((p) => p.selector.dst).sort()).toEqual(['0.0.0.0/0', '::/0']);
    expect(block[0]!.priority).toBe(PRIORITY_BLOCK);
    expect(PRIORITY_BLOCK).toBeGreaterThan(PRIORITY_PEER);
    expect(b.filter((p) => p.dir !== 'out').every((p) => p.templates?.[0]?.optional === true)).toBe(true);
    for (const p of b) expect(policyOwner(p)).toEqual({ kind: 'base' });
  });
});

describe('planDiff', () => {
  const desired = peerObjects(local, peer, [key3]);
  const all = () => true;
  it('empty kernel: everything is added', () => {
    const p = planDiff(desired, { states: [], policies: [] }, all);
    expect(p.addStates).toHaveLength(4);
    expect(p.addPolicies).toHaveLength(2);
    expect(planSize(p)).toBe(6);
  });
  it('kernel equal to desired: nothing to write', () => {
    expect(planSize(planDiff(desired, desired, all))).toBe(0);
  });
  it('a changed key (peer reboot) replaces just that state; a stale index is deleted; foreign objects are left alone', () => {
    const rebooted = peerObjects(local, { ...peer, bootId: '11111111-2222-4333-8444-555555555555' }, [key3]);
    const p = planDiff(rebooted, desired, all);
    expect(p.replaceStates).toHaveLength(4);
    expect(p.addStates).toHaveLength(0);
    expect(p.addPolicies).toHaveLength(0);

    const withOld = peerObjects(local, peer, [key3, key4]);
    const foreign = { src: '10.9.9.1', dst: '10.9.9.2', spi: 0x999, reqid: 7, mode: 'tunnel' as const };
    const q = planDiff(
      desired,
      {
        states: [...withOld.states, foreign],
        policies: [...withOld.policies, { selector: { src: '10.0.0.0/8', dst: '10.0.0.0/8' }, dir: 'out' as const, priority: 5 }],
      },
      all,
    );
    expect(q.deleteStates.map((s) => s.spi).sort()).toEqual([0x104, 0x104, 0x204, 0x204]);
    expect(q.deletePolicies).toHaveLength(2);
    expect(planSize(q)).toBe(6);
  });
  it('scope and keep restrict what may be deleted', () => {
    const withOld = peerObjects(local, peer, [key3, key4]);
    expect(planSize(planDiff({ states: [], policies: [] }, withOld, (o) => o.kind === 'peer' && o.nodeId === 9))).toBe(0);
    const keep4 = planDiff(desired, withOld, all, (o) =>
      'spi' in o ? stateKeyIndex(o) === 4 : o.mark !== undefined && ((o.mark.value >>> 12) & 0xf) === 4,
    );
    expect(planSize(keep4)).toBe(0);
  });
});
