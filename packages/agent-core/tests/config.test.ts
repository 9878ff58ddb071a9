import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { backendSection, ConfigError, defineBackendConfig, loadConfig, parseDuration } from '../src/index.js';
import { envName } from '../src/config/load.js';
import { durationRe } from '../src/config/schema.js';

// Two sections declared the way backend packages declare theirs (core knows neither): the
// WireGuard and IPsec shapes, so the old flat-schema cases below keep their exact expectations.
const wgSchema = z.strictObject({
  port: z.number().int().min(1).max(65535).default(51871),
  userspaceFallback: z.boolean().default(false),
  persistentKeepalive: z.number().int().min(0).max(65535).default(0),
  mtu: z
    .number()
    .int()
    .refine((v) => v === 0 || (v >= 1280 && v <= 65535), 'must be 0 (auto) or 1280..65535')
    .default(0),
});
const wireguard = defineBackendConfig({ section: 'wireguard', schema: wgSchema, defaults: wgSchema.parse({}) });
const ipsecSchema = z.strictObject({
  secretName: z.string().default('veil-ipsec-keys'),
  keyFile: z.string().default('/etc/veil/ipsec/keys'),
  keyRotationDuration: z.string().regex(durationRe, 'must be a duration like 5m or 90s').default('5m'),
});
const ipsec = defineBackendConfig({ section: 'ipsec', schema: ipsecSchema, defaults: ipsecSchema.parse({}) });
const backends = [wireguard, ipsec];

const tmpDirs: string[] = [];
afterAll(async () => {
  for (const d of tmpDirs) await rm(d, { recursive: true, force: true });
});

async function tmpFile(name: string, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'veil-config-'));
  tmpDirs.push(dir);
  const p = join(dir, name);
  await writeFile(p, text);
  return p;
}

describe('loadConfig', () => {
  it('applies defaults and the precedence flags > env > file > defaults', async () => {
    const file = await tmpFile(
      'c.yaml',
      [
        'nodeName: from-file',
        'encryption:',
        '  enabled: true',
        '  type: ipsec',
        '  wireguard:',
        '    port: 1000',
        '    mtu: 1400',
        'logLevel: debug',
      ].join('\n'),
    );
    const cfg = await loadConfig(
      {
        file,
        env: { VEIL_ENCRYPTION_WIREGUARD_PORT: '2000', VEIL_ENCRYPTION_TYPE: 'wireguard', VEIL_LOG_LEVEL: 'warn' },
        argv: ['--encryption.wireguard.port=3000', '--nodeName', 'from-flag', '--encryption.strictMode.enabled'],
      },
      { backends },
    );
    expect(backendSection(cfg, wireguard).port).toBe(3000);
    expect(cfg.encryption.type).toBe('wireguard');
    expect(cfg.encryption.enabled).toBe(true);
    expect(backendSection(cfg, wireguard).mtu).toBe(1400);
    expect(cfg.encryption.strictMode.enabled).toBe(true);
    expect(cfg.logLevel).toBe('warn');
    expect(cfg.nodeName).toBe('from-flag');
    expect(cfg.stateDir).toBe('/var/lib/veil');
    expect(cfg.encryption.ipsec).toEqual(ipsec.defaults);
  });

  it('reads JSON files, list values from env, K8S_NODE_NAME and --config', async () => {
    const file = await tmpFile('c.json', JSON.stringify({ encryption: { strictMode: { cidrs: ['10.0.0.0/8'] } } }));
    const cfg = await loadConfig({
      env: { K8S_NODE_NAME: 'n1', VEIL_POD_VETH_PATTERNS: 'lxc*, cni*' },
      argv: [`--config=${file}`],
    });
    expect(cfg.encryption.strictMode.cidrs).toEqual(['10.0.0.0/8']);
    expect(cfg.podVethPatterns).toEqual(['lxc*', 'cni*']);
    expect(cfg.nodeName).toBe('n1');
  });

  it('fails fast naming EVERY bad key, from every source', async () => {
    const file = await tmpFile(
      'bad.yaml',
      [
        'encryption:',
        '  type: ""',
        '  wireguard:',
        '    port: 70000',
        '    mtu: 100',
        '  ipsec:',
        '    keyRotationDuration: soon',
        '  strictMode:',
        '    cidrs: [nope]',
        'logLevel: loud',
        'typoKey: 1',
      ].join('\n'),
    );
    const err = await loadConfig(
      {
        file,
        env: { VEIL_METRICS_PORT: 'abc', VEIL_ENCRYPTION_ENABLED: 'maybe' },
        argv: ['--no-such-flag=1', '--health.port', '99999'],
      },
      { backends },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    const keys = (err as ConfigError).issues.map((i) => i.key).sort();
    expect(keys).toEqual(
      [
        'encryption.type',
        'encryption.wireguard.port',
        'encryption.wireguard.mtu',
        'encryption.ipsec.keyRotationDuration',
        'encryption.strictMode.cidrs.0',
        'logLevel',
        'typoKey',
        'metrics.port',
        'encryption.enabled',
        'no-such-flag',
        'health.port',
        'nodeName',
      ].sort(),
    );
    for (const k of keys) expect((err as ConfigError).message).toContain(k);
    expect((err as ConfigError).issues.find((i) => i.key === 'metrics.port')?.source).toBe('env');
  });

  it('refuses strict-mode CIDRs with host bits or a bad prefix length, naming the config key (issue 12)', async () => {
    for (const [cidr, message] of [
      ['10.244.1.1/16', /host bits set/],
      ['10.0.0.0/33', /prefix length exceeds 32/],
      ['fd00::1/200', /prefix length exceeds 128/],
    ] as const) {
      const err = (await loadConfig({
        env: { VEIL_NODE_NAME: 'n1' },
        argv: [`--encryption.strictMode.cidrs=10.0.0.0/8,${cidr}`],
      }).catch((e: unknown) => e)) as ConfigError;
      expect(err, cidr).toBeInstanceOf(ConfigError);
      const issue = err.issues.find((i) => i.key === 'encryption.strictMode.cidrs.1');
      expect(issue?.message, cidr).toMatch(message);
      expect(err.message).toContain('encryption.strictMode.cidrs.1');
    }
    const ok = await loadConfig({
      env: { VEIL_NODE_NAME: 'n1' },
      argv: ['--encryption.strictMode.cidrs=10.244.0.0/16,fd00::/64'],
    });
    expect(ok.encryption.strictMode.cidrs).toEqual(['10.244.0.0/16', 'fd00::/64']);
  });

  it('names an unreadable or malformed file', async () => {
    await expect(loadConfig({ file: '/nonexistent/veil.yaml', env: {} })).rejects.toThrow(
      /cannot read \/nonexistent\/veil.yaml: ENOENT/,
    );
    const bad = await tmpFile('x.yaml', 'a: [unclosed');
    await expect(loadConfig({ file: bad, env: {} })).rejects.toBeInstanceOf(ConfigError);
  });

  it('maps keys to VEIL_ env names and parses durations', () => {
    expect(envName('encryption.strictMode.allowRemoteNodeIdentities')).toBe(
      'VEIL_ENCRYPTION_STRICT_MODE_ALLOW_REMOTE_NODE_IDENTITIES',
    );
    expect(envName('status.socketPath')).toBe('VEIL_STATUS_SOCKET_PATH');
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('90s')).toBe(90_000);
  });
});

describe('backend-owned sections', () => {
  // A contributor's section: core has never heard of it, yet it is merged, typed from its
  // defaults for flags and env, validated by its own schema and named by full path when bad.
  const schema = z.strictObject({
    banner: z.string().min(1).default('plaintext'),
    everyMs: z.number().int().positive().default(1000),
  });
  const acme = defineBackendConfig({ section: 'acme', schema, defaults: schema.parse({}) });

  it('merges defaults, file, env and flags into the section', async () => {
    const file = await tmpFile(
      'a.yaml',
      ['nodeName: n1', 'encryption:', '  type: acme', '  acme:', '    banner: from-file'].join('\n'),
    );
    const cfg = await loadConfig({ file, env: { VEIL_ENCRYPTION_ACME_EVERY_MS: '250' }, argv: [] }, { backends: [acme] });
    expect(backendSection(cfg, acme)).toEqual({ banner: 'from-file', everyMs: 250 });
    const flagged = await loadConfig({ file, env: {}, argv: ['--encryption.acme.banner', 'from-flag'] }, { backends: [acme] });
    expect(backendSection(flagged, acme).banner).toBe('from-flag');
  });

  it('names bad and unknown keys of the section by their full path', async () => {
    const file = await tmpFile(
      'b.yaml',
      ['nodeName: n1', 'encryption:', '  acme:', '    banner: ""', '    colour: red'].join('\n'),
    );
    const err = await loadConfig({ file, env: { VEIL_ENCRYPTION_ACME_EVERY_MS: 'soon' } }, { backends: [acme] }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).issues.map((i) => i.key).sort()).toEqual(
      ['encryption.acme.banner', 'encryption.acme.colour', 'encryption.acme.everyMs'].sort(),
    );
  });

  it('keeps other backends’ sections as written and refuses a non-mapping key under encryption', async () => {
    const file = await tmpFile(
      'c.yaml',
      ['nodeName: n1', 'encryption:', '  other:', '    anything: [1, 2]', '  typo: true'].join('\n'),
    );
    const err = await loadConfig({ file, env: {} }, { backends: [acme] }).catch((e: unknown) => e);
    expect((err as ConfigError).issues.map((i) => i.key)).toEqual(['encryption.typo']);
    const ok = await loadConfig(
      { file: await tmpFile('d.yaml', 'nodeName: n1\nencryption:\n  other:\n    anything: [1, 2]\n'), env: {} },
      { backends: [acme] },
    );
    expect(ok.encryption.other).toEqual({ anything: [1, 2] });
  });

  it('defers section flags until the backend is known, and refuses them when no backend claims them', async () => {
    const argv = ['--nodeName=n1', '--encryption.acme.banner', 'x', '--logLevel=debug'];
    const core = await loadConfig({ argv, env: {} }, { backends: 'defer' });
    expect(core.logLevel).toBe('debug');
    const err = await loadConfig({ argv: ['--nodeName=n1', '--encryption.acme.banner=x'], env: {} }).catch((e: unknown) => e);
    expect((err as ConfigError).issues.map((i) => i.key)).toEqual(['encryption.acme.banner']);
  });

  it('refuses a section name that is a core key', () => {
    expect(() => defineBackendConfig({ section: 'strictMode', schema, defaults: schema.parse({}) })).toThrow(
      /encryption\.strictMode/,
    );
  });
});
