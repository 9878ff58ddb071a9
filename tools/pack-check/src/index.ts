/**
 * @veil/pack-check: `npm pack` the packages a third party installs, and install the tarballs into a
 * scratch project outside the workspace, the way a user of the published packages would.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The repository root (this file is tools/pack-check/{src,dist}/index.*). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * What a third party installs to embed a backend or run the agent core, in dependency order:
 * the two backends, agent-core, and every workspace package they depend on at run time.
 * (@veil/datapath, libbpf-ts and @veil/bpf are the CLI's, not a backend's: no backend imports them.)
 */
export const PUBLISHED = [
  'packages/ip',
  'packages/netlink',
  'packages/node-xfrm-bindings',
  'packages/agent-core',
  'packages/backend-wireguard',
  'packages/backend-ipsec',
] as const;

/** The examples, packed as a third party would publish their own packages. */
export const EXAMPLES = ['examples/backend-null', 'examples/embed-wireguard'] as const;

/** One packed tarball. */
export interface PackedPackage {
  /** Repository-relative source directory. */
  readonly dir: string;
  readonly name: string;
  readonly version: string;
  /** Absolute path of the .tgz. */
  readonly tarball: string;
  /** Paths inside the package (as `npm pack --json` lists them). */
  readonly files: readonly string[];
}

/** Failure of an npm command, with its output. */
export class NpmError extends Error {
  override name = 'NpmError';
  constructor(
    readonly args: readonly string[],
    readonly output: string,
  ) {
    super(`npm ${args.join(' ')} failed:\n${output}`);
  }
}

/** npm settings a scratch install may inherit from the environment: where the cache and npmrc files are. */
const KEPT_NPM_ENV = new Set(['npm_config_cache', 'npm_config_userconfig', 'npm_config_globalconfig']);

/**
 * The environment for npm in a scratch project: without the `npm_*` variables an enclosing
 * `npm test` exports (its `npm_config_local_prefix` is the workspace, `npm_package_*` its
 * manifest), so the scratch install cannot act on the workspace.
 */
function scratchEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('npm_') || KEPT_NPM_ENV.has(k)));
  return { ...env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false', ...extra };
}

async function npm(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  try {
    const { stdout } = await run('npm', args, {
      cwd,
      env: scratchEnv(env),
      maxBuffer: 64 * 1024 * 1024,
      timeout: 15 * 60_000,
    });
    return stdout;
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new NpmError(args, `${err.stderr ?? ''}${err.stdout ?? ''}` || err.message);
  }
}

/** `npm pack --json` of one package directory into `outDir`. */
export async function pack(dir: string, outDir: string): Promise<PackedPackage> {
  await mkdir(outDir, { recursive: true });
  const out = await npm(['pack', '--json', '--pack-destination', outDir, '--ignore-scripts'], join(REPO_ROOT, dir));
  const [info] = JSON.parse(out) as { name: string; version: string; filename: string; files: { path: string }[] }[];
  if (!info) throw new NpmError(['pack', dir], out);
  return {
    dir,
    name: info.name,
    version: info.version,
    tarball: join(outDir, info.filename),
    files: info.files.map((f) => f.path),
  };
}

/** Options of {@link installTarballs}. */
export interface InstallOptions {
  /** Extra environment for npm and the packages' install scripts (e.g. `VEIL_BUILD_FROM_SOURCE=1`). */
  readonly env?: NodeJS.ProcessEnv;
}

/** How {@link installTarballs} got its dependencies. */
export interface InstallResult {
  /**
   * `offline`: `npm install --offline`, everything from the npm cache (~/.npm). `prefer-offline`:
   * the cache lacked something (a fresh machine's cache holds the tarballs `npm ci` fetched but
   * not always the registry metadata or the newest versions the ranges allow), so npm asked the
   * registry for that only.
   */
  readonly mode: 'offline' | 'prefer-offline';
  /** npm's output (the last attempt), and why `--offline` was not enough when it was not. */
  readonly output: string;
  readonly offlineFailure?: string;
}

/**
 * Makes `projectDir` a fresh npm project (its own package.json, no workspace above it) and installs
 * the tarballs there: each workspace dependency (`"@veil/ip": "0.1.0"`) is satisfied by its sibling
 * tarball, every other dependency comes from the npm cache (`--offline`), or, when the cache lacks
 * one, from the registry for that one (`--prefer-offline`).
 */
export async function installTarballs(
  projectDir: string,
  tarballs: readonly string[],
  opts: InstallOptions = {},
): Promise<InstallResult> {
  await mkdir(projectDir, { recursive: true });
  await writeFile(
    join(projectDir, 'package.json'),
    `${JSON.stringify({ name: 'veil-pack-check-scratch', version: '0.0.0', private: true, type: 'module' }, null, 2)}\n`,
  );
  const args = (mode: string): string[] => ['install', `--${mode}`, '--no-audit', '--no-fund', '--loglevel=warn', ...tarballs];
  try {
    return { mode: 'offline', output: await npm(args('offline'), projectDir, opts.env) };
  } catch (e) {
    if (!(e instanceof NpmError) || !/ENOTCACHED|offline/i.test(e.output)) throw e;
    const output = await npm(args('prefer-offline'), projectDir, opts.env);
    return {
      mode: 'prefer-offline',
      output,
      offlineFailure: e.output.split('\n').find((l) => /ENOTCACHED|request to/.test(l)) ?? '',
    };
  }
}

/** The package.json of an installed package in `projectDir`. */
export async function installedManifest(projectDir: string, name: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(projectDir, 'node_modules', name, 'package.json'), 'utf8')) as Record<string, unknown>;
}
