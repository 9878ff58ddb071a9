import { TestNetns } from '@veil/test-utils';

/**
 * Two test namespaces joined by a veth "underlay": `devs[0]` in the first with `<subnet>.1/24`, `devs[1]`
 * in the second with `<subnet>.2/24`, both up (at `mtu` when given). The caller removes them (they are removed here when setup fails).
 */
export function underlayPair(
  prefixes: [string, string],
  devs: [string, string],
  subnet: string,
  mtu?: number,
): [TestNetns, TestNetns] {
  const a = TestNetns.create(prefixes[0]);
  const b = TestNetns.create(prefixes[1]);
  const sides: [TestNetns, string][] = [
    [a, devs[0]],
    [b, devs[1]],
  ];
  try {
    a.exec('ip', ['link', 'add', devs[0], 'type', 'veth', 'peer', 'name', devs[1], 'netns', b.name]);
    if (mtu !== undefined) for (const [n, dev] of sides) n.exec('ip', ['link', 'set', dev, 'mtu', String(mtu)]);
    sides.forEach(([n, dev], i) => n.exec('ip', ['addr', 'add', `${subnet}.${i + 1}/24`, 'dev', dev]));
    for (const [n, dev] of sides) n.exec('ip', ['link', 'set', dev, 'up']);
    return [a, b];
  } catch (e) {
    // Not returned, so the caller cannot remove them: done here.
    a.remove();
    b.remove();
    throw e;
  }
}
