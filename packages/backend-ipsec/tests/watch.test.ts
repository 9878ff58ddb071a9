import { TestNetns, describePrivileged } from '@veil/test-utils';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { watchXfrm, type XfrmWatch } from '../src/watch.js';

describePrivileged('XFRM notifications (host kernel, netns)', ['root', 'netns'], () => {
  let ns: TestNetns;
  let w: XfrmWatch;
  const seen: string[] = [];
  beforeAll(() => {
    ns = TestNetns.create('ipsw');
    w = watchXfrm({ netns: ns.name }, (what) => seen.push(what));
  });
  afterAll(() => {
    w?.close();
    ns?.remove();
  });

  async function until(what: string): Promise<void> {
    const deadline = Date.now() + 5000;
    while (!seen.includes(what)) {
      expect(Date.now(), `waiting for ${what}; saw ${seen.join(', ')}`).toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('reports policy updates, deletions and flushes (not additions)', async () => {
    const sel = ['dir', 'out', 'src', '10.1.0.0/16', 'dst', '10.2.0.0/16'];
    ns.exec('ip', ['xfrm', 'policy', 'add', ...sel, 'priority', '5']);
    await new Promise((r) => setTimeout(r, 100));
    expect(seen).toEqual([]);
    ns.exec('ip', ['xfrm', 'policy', 'update', ...sel, 'priority', '6']);
    await until('policy update');
    ns.exec('ip', ['xfrm', 'policy', 'delete', ...sel]);
    await until('policy delete');
    // The kernel announces a flush only when it removed something. (States cannot be added on this
    // host kernel; the kernel lane sees state deletions repaired.)
    ns.exec('ip', ['xfrm', 'policy', 'add', ...sel, 'priority', '5']);
    ns.exec('ip', ['xfrm', 'policy', 'flush']);
    await until('policy flush');
  });
});
