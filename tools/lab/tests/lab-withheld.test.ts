import { describe, expect, it } from 'vitest';
import { formatWithheld, judgeWithheld, type WithheldPair } from '../src/withheld.js';

/** n1-p1 and n2-p1 probing n3-p1: 3 pings and one TCP connect each, all dropped. */
function pair(node: string, over: Partial<WithheldPair> = {}): WithheldPair & { node: string } {
  return {
    node,
    from: `${node}-p1`,
    to: 'n3-p1',
    toIP: '10.244.3.11',
    ping: { sent: 3, received: 0 },
    tcp: { dropped: true, error: 'timeout after 3000 ms (0/1024 bytes back)' },
    ...over,
  };
}

const base = {
  withheld: 'n3',
  sources: ['n1', 'n2'],
  excludedSources: ['n3-p1'],
  peerStates: { n1: 'pending', n2: 'pending' },
  pairs: [pair('n1'), pair('n2')],
  before: [
    { 'drop-not-ready-strict': 0, 'to-wire-drop-clear': 10 },
    { 'drop-not-ready-strict': 0, 'to-wire-drop-clear': 0 },
  ],
  after: [
    { 'drop-not-ready-strict': 0, 'to-wire-drop-clear': 16 },
    { 'drop-not-ready-strict': 1, 'to-wire-drop-clear': 5 },
  ],
};

describe('lab up --withhold-key: the verdict on the probes to the node without a key', () => {
  it('every probe unanswered and counted (either strict drop reason): no failure, and the summary line says so', () => {
    const w = judgeWithheld(base);
    expect(w.failures).toEqual([]);
    expect(w.probes).toEqual({ sent: 8, answered: 0 });
    expect(w.drops).toEqual([
      { node: 'n1', delta: { 'drop-not-ready-strict': 0, 'to-wire-drop-clear': 6 }, total: 6, required: 4, ok: true },
      { node: 'n2', delta: { 'drop-not-ready-strict': 1, 'to-wire-drop-clear': 5 }, total: 6, required: 4, ok: true },
    ]);
    expect(w.pairs[0]).not.toHaveProperty('node');
    expect(formatWithheld({ ...w, capture: { plaintextPackets: 0, markerPackets: 0 } })).toMatch(
      /strict mode, n3 withholds its key .*: 8\/8 probes from n1,n2 dropped, drops counted n1 \+6 \(to-wire-drop-clear\), n2 \+6 \(drop-not-ready-strict, to-wire-drop-clear\); plaintext 0, marker 0; not probed from n3-p1/,
    );
  });

  it('fails on an answered ping, an answered or refused TCP connect, a ping that did not run, too few drops, a peer not pending', () => {
    const w = judgeWithheld({
      ...base,
      peerStates: { n1: 'pending', n2: 'active' },
      pairs: [
        pair('n1', { ping: { sent: 3, received: 1 }, tcp: { dropped: false, error: 'ECONNREFUSED' } }),
        pair('n2', { ping: { sent: 0, received: 0, error: 'connect: Network is unreachable' } }),
      ],
      after: [{ 'drop-not-ready-strict': 0, 'to-wire-drop-clear': 13 }, base.after[1]!],
    });
    expect(w.probes).toEqual({ sent: 5, answered: 2 });
    expect(w.failures).toEqual([
      'n2 sees n3 as active, not pending (it should have no key)',
      'ping n1-p1 → n3-p1 (10.244.3.11): 1/3 answered by a node without a key',
      'tcp n1-p1 → n3-p1 (10.244.3.11) was answered: ECONNREFUSED',
      'ping n2-p1 → n3-p1 (10.244.3.11) did not run: connect: Network is unreachable',
      'n1 counted 3 strict drops for 4 probes to n3',
    ]);
  });
});
