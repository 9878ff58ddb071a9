import { afterAll, beforeAll, expect, it } from 'vitest';
import { TestNetns, describePrivileged, linkName } from '@veil/test-utils';
import {
  NetlinkSocket,
  NetlinkSyscallError,
  createVeth,
  readSysctl,
  setIpForwarding,
  setRpFilter,
  writeSysctl,
} from '../src/index.js';

describePrivileged('sysctl helpers act on the given netns only', ['root', 'netns'], () => {
  let ns: TestNetns;
  beforeAll(() => {
    ns = TestNetns.create('nls');
  });
  afterAll(() => ns?.remove());

  it('setIpForwarding / setRpFilter / writeSysctl in a test netns leave the caller alone', async () => {
    const hostForward = readSysctl('net.ipv4.ip_forward');
    setIpForwarding(4, true, { netns: ns.path });
    setIpForwarding(6, true, { netns: ns.name });
    expect(readSysctl('net.ipv4.ip_forward', { netns: ns.path })).toBe('1');
    expect(ns.exec('sysctl', ['-n', 'net.ipv4.ip_forward']).trim()).toBe('1');
    expect(ns.exec('sysctl', ['-n', 'net.ipv6.conf.all.forwarding']).trim()).toBe('1');
    expect(readSysctl('net.ipv4.ip_forward')).toBe(hostForward);

    const sock = NetlinkSocket.open('ROUTE', { netns: ns.path });
    const dev = linkName('nl');
    try {
      await createVeth(sock, { name: dev, peerName: linkName('nl') });
    } finally {
      sock.close();
    }
    setRpFilter('all', 0, { netns: ns.path });
    setRpFilter(dev, 2, { netns: ns.path });
    expect(ns.exec('sysctl', ['-n', `net.ipv4.conf.${dev}.rp_filter`]).trim()).toBe('2');
    writeSysctl(`net.ipv4.conf.${dev}.rp_filter`, 0, { netns: ns.path });
    expect(readSysctl(`net/ipv4/conf/${dev}/rp_filter`, { netns: ns.path })).toBe('0');
  });

  it('a missing key is a NetlinkSyscallError (open, ENOENT)', () => {
    expect(() => readSysctl('net.ipv4.veil_no_such_knob', { netns: ns.path })).toThrow(NetlinkSyscallError);
    expect(() => readSysctl('net.ipv4.veil_no_such_knob')).toThrow(expect.objectContaining({ code: 'ENOENT', syscall: 'open' }));
  });
});
