import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { TestNetns, describePrivileged } from '@veil/test-utils';
import { afterAll, beforeAll, expect, it } from 'vitest';

// What the client really sends, header included: run it under strace and compare with the
// iproute2 captures in tests/golden/iproute2.json (sequence numbers and port ids aside).
const golden = JSON.parse(readFileSync(new URL('./golden/iproute2.json', import.meta.url), 'utf8')) as {
  requests: { name: string; type: number; flags: number; payloadHex: string }[];
};
const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));

describePrivileged('requests on the wire match iproute2 (strace)', ['root', 'netns', 'strace'], () => {
  let ns: TestNetns;
  beforeAll(() => {
    ns = TestNetns.create('xfw');
  });
  afterAll(() => ns?.remove());

  it('policy add, policy delete and state add carry the same header flags and bytes', () => {
    const script = `
      import { XfrmClient } from ${JSON.stringify(dist)};
      const x = XfrmClient.open({ netns: ${JSON.stringify(ns.name)} });
      const sel = { src: '10.0.0.0/24', dst: '10.1.0.0/16', proto: 6, srcPort: 1234, dstPort: 80 };
      await x.addPolicy({ selector: sel, dir: 'out', priority: 100, mark: { value: 0x10, mask: 0xff }, ifId: 7,
        templates: [{ src: '192.168.1.1', dst: '192.168.1.2', proto: 'esp', reqid: 5, mode: 'tunnel' }] });
      await x.getPolicy({ selector: sel, dir: 'out', mark: { value: 0x10, mask: 0xff }, ifId: 7 });
      await x.addState({ src: '10.0.0.1', dst: '10.0.0.2', spi: 0x1000, reqid: 1, mode: 'tunnel',
        aead: { name: 'rfc4106(gcm(aes))', key: Buffer.from('0102030405060708090a0b0c0d0e0f1011121314', 'hex'), icvLen: 128 } }).catch(() => {});
      x.close();`;
    const r = spawnSync(
      'strace',
      ['-f', '-e', 'trace=sendmsg,sendto', '-xx', '-s', '65536', process.execPath, '--input-type=module', '-e', script],
      {
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    expect(r.status, r.stderr).toBe(0);
    // One netlink message per send here; collect (type, flags, payload).
    const sent: { type: number; flags: number; payloadHex: string }[] = [];
    for (const line of r.stderr.split('\n')) {
      if (!/^(\[pid\s+\d+\] )?(sendmsg|sendto)\(/.test(line)) continue;
      const bytes = [...line.matchAll(/"((?:\\x[0-9a-f]{2})+)"/g)].map((m) => m[1]!.replaceAll('\\x', '')).join('');
      const hdr = /nlmsg_len=(\d+), nlmsg_type=0x([0-9a-f]+)[^,]*, nlmsg_flags=([^,]+),/.exec(line);
      if (!hdr) continue;
      const flags = hdr[3]!
        .split('|')
        .reduce((acc, f) => acc | ({ NLM_F_REQUEST: 1, NLM_F_ACK: 4 } as Record<string, number>)[f]!, 0);
      sent.push({ type: parseInt(hdr[2]!, 16), flags, payloadHex: bytes });
    }
    for (const name of ['policy-add-v4-tmpl-mark', 'policy-get-v4-mark', 'state-add-gcm']) {
      const g = golden.requests.find((x) => x.name === name)!;
      const mine = sent.find((s) => s.type === g.type);
      expect(mine, `${name}: no message of type ${g.type} sent`).toBeDefined();
      expect(mine!.flags, name).toBe(g.flags);
      expect(mine!.payloadHex, name).toBe(g.payloadHex);
    }
  });
});
