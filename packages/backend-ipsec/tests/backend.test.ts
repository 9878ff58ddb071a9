import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Container } from 'inversify';
import { DEFAULT_CONFIG, TOKENS, createLogger, loadBackendModule, type AgentConfig } from '@veil/agent-core';
import { TestNetns, describePrivileged } from '@veil/test-utils';
import { XfrmClient } from 'node-xfrm-bindings';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import backendModule, {
  BOOT_ID_ANNOTATION,
  EPOCH_ANNOTATION,
  IpsecBackend,
  ipsecConfig,
  IpsecConfigError,
  IpsecNotSupportedError,
  KEY_INDEX_ANNOTATION,
  TUNNEL_IPS_ANNOTATION,
  espInnerMtu,
  keygen,
  parseKeyLine,
  parseTunnelIPs,
} from '../src/index.js';

const silent = createLogger({ level: 'silent' });
const dir = mkdtempSync(join(tmpdir(), 'veil-ipsec-host-'));
const keyFile = join(dir, 'keys');
writeFileSync(keyFile, `${keygen({ spi: 3 })}\n`);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function configFor(nodeId: number): AgentConfig {
  return {
    ...DEFAULT_CONFIG,
    nodeName: 'n1',
    nodeId,
    stateDir: dir,
    encryption: { ...DEFAULT_CONFIG.encryption, enabled: true, type: 'ipsec', ipsec: { ...ipsecConfig.defaults, keyFile } },
  };
}

describe('ContainerModule', () => {
  it("is the default export, loadable by agent-core by name, and binds agent-core's real token", async () => {
    for (const mod of [await loadBackendModule('ipsec'), backendModule]) {
      const c = new Container();
      c.bind(TOKENS.Config).toConstantValue(configFor(1));
      c.bind(TOKENS.Logger).toConstantValue(silent);
      await c.loadAsync(mod);
      const b = c.get(TOKENS.EncryptionBackend);
      expect(b.name).toBe('ipsec');
      expect(b.peerAnnotations.map((a) => a.key)).toEqual([
        BOOT_ID_ANNOTATION,
        TUNNEL_IPS_ANNOTATION,
        KEY_INDEX_ANNOTATION,
        EPOCH_ANNOTATION,
      ]);
      expect(c.get(TOKENS.EncryptionBackend)).toBe(b);
    }
  });
  it('validates peer annotations', () => {
    const b = new IpsecBackend(configFor(1), silent);
    const v = Object.fromEntries(b.peerAnnotations.map((a) => [a.key, (value: string) => a.validate(value)]));
    expect(v[BOOT_ID_ANNOTATION]!('0b1e5c1d-3f0a-4c7e-9d2b-6a5f4e3d2c1b')).toBeUndefined();
    expect(v[BOOT_ID_ANNOTATION]!('xyz')).toMatch(/UUID/);
    expect(v[TUNNEL_IPS_ANNOTATION]!('192.168.1.1,fd00::1')).toBeUndefined();
    expect(v[TUNNEL_IPS_ANNOTATION]!('192.168.1.1,192.168.1.2')).toMatch(/two IPv4/);
    expect(v[TUNNEL_IPS_ANNOTATION]!('host')).toMatch(/not an IP/);
    expect(v[KEY_INDEX_ANNOTATION]!('15')).toBeUndefined();
    expect(v[KEY_INDEX_ANNOTATION]!('0')).toMatch(/1\.\.15/);
    expect(v[EPOCH_ANNOTATION]!('0')).toBeUndefined();
    expect(v[EPOCH_ANNOTATION]!('4294967295')).toBeUndefined();
    expect(v[EPOCH_ANNOTATION]!('4294967296')).toMatch(/0\.\.4294967295/);
    expect(parseTunnelIPs('fd00::1')).toEqual({ ipv6: 'fd00::1' });
  });
});

describe('ESP MTU overhead', () => {
  it('per algorithm and family, padding included', () => {
    const gcm = parseKeyLine(`1 rfc4106(gcm(aes)) ${'a'.repeat(40)} 128`).algorithm;
    const gcm64 = parseKeyLine(`1 rfc4106(gcm(aes)) ${'a'.repeat(40)} 64`).algorithm;
    const cbc = parseKeyLine(`1 hmac(sha256) ${'1'.repeat(64)} cbc(aes) ${'2'.repeat(32)}`).algorithm;
    // 1500 - 20 (IPv4) - 8 (ESP) - 8 (IV) - 16 (ICV) = 1448, a multiple of 4, minus 2 trailer bytes.
    expect(espInnerMtu(1500, gcm, 4)).toBe(1446);
    expect(espInnerMtu(1500, gcm, 6)).toBe(1426);
    expect(espInnerMtu(1500, gcm64, 4)).toBe(1454);
    // CBC pads to 16: 1500 - 20 - 8 - 16 (IV) - 16 (HMAC-SHA-256/128) = 1440 → 1438.
    expect(espInnerMtu(1500, cbc, 4)).toBe(1438);
    expect(espInnerMtu(9000, gcm, 4)).toBe(8946);
  });
});

describe('init refusals', () => {
  it('needs a node ID', async () => {
    const b = new IpsecBackend(configFor(0), silent, {
      bootId: '0b1e5c1d-3f0a-4c7e-9d2b-6a5f4e3d2c1b',
      tunnelIPs: { ipv4: '192.0.2.10' },
    });
    await expect(b.init()).rejects.toThrow(IpsecConfigError);
    await expect(b.init()).rejects.toThrow(/node ID 1\.\.65535/);
  });
});

// This host kernel has no ESP: init installs the fail-closed policies, then refuses clearly.
describePrivileged('init on a kernel without ESP (host, netns)', ['root', 'netns'], () => {
  let ns: TestNetns;
  beforeAll(() => {
    ns = TestNetns.create('ipsb');
  });
  afterAll(() => ns?.remove());

  it('installs the BLOCK and IN/FWD policies first, then fails with IpsecNotSupportedError', async () => {
    const b = new IpsecBackend(configFor(1), silent, { netns: ns.name, tunnelIPs: { ipv4: '192.0.2.10' }, driftIntervalMs: 0 });
    const err = await b.init().then(
      () => undefined,
      (e: unknown) => e,
    );
    await b.close();
    expect(err).toBeInstanceOf(IpsecNotSupportedError);
    expect((err as Error).message).toMatch(/modprobe esp4/);
    const x = XfrmClient.open({ netns: ns.name });
    try {
      const pols = await x.listPolicies();
      expect(
        pols
          .filter((p) => p.action === 'block')
          .map((p) => p.selector.dst)
          .sort(),
      ).toEqual(['0.0.0.0/0', '::/0']);
      expect(pols).toHaveLength(6);
      expect(await x.listStates()).toEqual([]);
    } finally {
      x.close();
    }
  });
});
