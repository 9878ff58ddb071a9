import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { PUBLISHED, installTarballs, installedManifest } from '../src/index.js';
import { jsonLine, nodeIn } from './helpers.js';

interface Manifest {
  name: string;
  version: string;
  engines?: { node?: string };
  files?: string[];
  exports?: Record<string, string | { types?: string; default?: string }>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

const ctx = inject('packCheck');
const published = ctx.packed.filter((p) => (PUBLISHED as readonly string[]).includes(p.dir));
const packedNames = new Set(ctx.packed.map((p) => p.name));

describe('the packed tarballs', () => {
  it('are the packages a third party installs, each once', () => {
    expect(published.map((p) => p.name)).toEqual([
      '@veil/ip',
      '@veil/netlink',
      'node-xfrm-bindings',
      '@veil/agent-core',
      '@veil/backend-wireguard',
      '@veil/backend-ipsec',
    ]);
  });

  it.each(published.map((p) => [p.name, p] as const))(
    '%s: README, engines, every export target with its types, and no sources, tests or build info',
    async (name, p) => {
      const m = (await installedManifest(ctx.project, name)) as unknown as Manifest;
      expect(p.files).toContain('README.md');
      expect(p.files).toContain('package.json');
      expect(m.engines?.node).toBe('>=20.19');
      const exp = m.exports ?? {};
      expect(Object.keys(exp)).toContain('.');
      for (const [sub, target] of Object.entries(exp)) {
        if (typeof target === 'string') {
          expect(p.files, `${name} exports ${sub}`).toContain(target.replace(/^\.\//, ''));
          continue;
        }
        expect(target.types, `${name} exports ${sub} has types`).toMatch(/\.d\.ts$/);
        for (const file of [target.types, target.default])
          expect(p.files, `${name} exports ${sub}`).toContain(file?.replace(/^\.\//, ''));
      }
      const stray = p.files.filter(
        (f) => /^(src|tests|bench)\//.test(f) || f.endsWith('.tsbuildinfo') || f.startsWith('dist-bench/'),
      );
      expect(stray).toEqual([]);
    },
  );

  it('workspace dependencies are plain versions, resolved from the sibling tarballs (no registry)', async () => {
    const lock = JSON.parse(await readFile(join(ctx.project, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { version?: string; resolved?: string }>;
    };
    for (const p of ctx.packed) {
      const m = (await installedManifest(ctx.project, p.name)) as unknown as Manifest;
      for (const [dep, range] of Object.entries({ ...m.dependencies, ...m.peerDependencies })) {
        if (!packedNames.has(dep)) continue;
        expect(range, `${p.name} → ${dep}`).toMatch(/^\^?\d+\.\d+\.\d+$/);
        // One copy, at the top, from its tarball.
        const entry = lock.packages[`node_modules/${dep}`];
        expect(entry?.resolved, `${dep} in the scratch lockfile`).toMatch(/^file:.*\.tgz$/);
        expect(lock.packages[`node_modules/${p.name}/node_modules/${dep}`], `nested ${dep} under ${p.name}`).toBeUndefined();
      }
    }
  });
});

describe('installed into a project outside the workspace', () => {
  it('every published package imports from there, and @veil/netlink opens a socket with the shipped addon', () => {
    const names = published.map((p) => p.name);
    const script = `
      const out = {};
      for (const n of ${JSON.stringify(names)}) out[n] = { from: import.meta.resolve(n), exports: Object.keys(await import(n)).length };
      const nl = await import('@veil/netlink');
      const sock = nl.NetlinkSocket.open('ROUTE');
      out.lo = (await nl.getLink(sock, 'lo'))?.name;
      sock.close();
      console.log(JSON.stringify(out));`;
    const r = nodeIn(ctx.project, ['--input-type=module', '-e', script]);
    expect(r.code, r.stderr).toBe(0);
    const out = jsonLine<Record<string, { from: string; exports: number } | string>>(r.stdout);
    for (const n of names) {
      const got = out[n] as { from: string; exports: number };
      expect(got.from.startsWith(`file://${join(ctx.project, 'node_modules', n)}/`), `${n} from ${got.from}`).toBe(true);
      expect(got.exports).toBeGreaterThan(0);
    }
    expect(out.lo).toBe('lo');
  });

  it('the shipped addon was used as is: the install script built nothing', async () => {
    const release = join(ctx.project, 'node_modules', '@veil', 'netlink', 'build', 'Release');
    expect(await readdir(release)).toEqual(['veil_netlink.node']);
  });

  it('@veil/netlink builds its addon from the shipped source when asked (VEIL_BUILD_FROM_SOURCE=1), and it loads', async () => {
    const project = join(ctx.root, 'from-source');
    const tarballs = ctx.packed.filter((p) => p.name === '@veil/ip' || p.name === '@veil/netlink').map((p) => p.tarball);
    const res = await installTarballs(project, tarballs, { env: { VEIL_BUILD_FROM_SOURCE: '1' } });
    process.stderr.write(`[pack-check] from-source install: npm --${res.mode}\n`);
    const pkg = join(project, 'node_modules', '@veil', 'netlink');
    // node-gyp's object files are the proof it compiled here rather than keeping the shipped binary.
    expect(existsSync(join(pkg, 'build', 'Release', 'obj.target'))).toBe(true);
    const r = nodeIn(project, [
      '--input-type=module',
      '-e',
      "const nl = await import('@veil/netlink'); const s = nl.NetlinkSocket.open('ROUTE'); console.log(JSON.stringify({ lo: (await nl.getLink(s, 'lo'))?.name })); s.close();",
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(jsonLine<{ lo: string }>(r.stdout).lo).toBe('lo');
  }, 600_000);
});
