import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { ConfigError, type ConfigIssue } from '../errors.js';
import { type LoadedBackend, loadBackend } from '../di/load-backend.js';
import { type BackendConfigSpec, CORE_ENCRYPTION_KEYS, validateSection } from './backend.js';
import { AgentConfigSchema, DEFAULT_CONFIG, type AgentConfig } from './schema.js';

type Leaf = 'boolean' | 'number' | 'string' | 'string[]';

/** Every settable key with its type, derived from the defaults. */
function leaves(obj: unknown, prefix = '', out = new Map<string, Leaf>()): Map<string, Leaf> {
  for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (Array.isArray(v)) out.set(path, 'string[]');
    else if (typeof v === 'object' && v !== null) leaves(v, path, out);
    else out.set(path, typeof v === 'boolean' ? 'boolean' : typeof v === 'number' ? 'number' : 'string');
  }
  return out;
}
const CORE_LEAVES = leaves(DEFAULT_CONFIG);

/** `encryption.<x>.…` where `x` is not one of core's keys: a backend section's key. */
function backendSectionOf(key: string): string | undefined {
  const parts = key.split('.');
  return parts.length >= 3 && parts[0] === 'encryption' && !CORE_ENCRYPTION_KEYS.has(parts[1] as string) ? parts[1] : undefined;
}

/** `encryption.strictMode.enabled` → `VEIL_ENCRYPTION_STRICT_MODE_ENABLED`. */
export function envName(key: string): string {
  return (
    'VEIL_' +
    key
      .split('.')
      .map((s) => s.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase())
      .join('_')
  );
}

function coerce(key: string, raw: string, kind: Leaf, source: ConfigIssue['source'], issues: ConfigIssue[]): unknown {
  switch (kind) {
    case 'boolean':
      if (/^(true|1|yes)$/i.test(raw)) return true;
      if (/^(false|0|no)$/i.test(raw)) return false;
      issues.push({ key, source, message: `expected a boolean, got "${raw}"` });
      return undefined;
    case 'number': {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n)) {
        issues.push({ key, source, message: `expected a number, got "${raw}"` });
        return undefined;
      }
      return n;
    }
    case 'string[]':
      return raw
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
    default:
      return raw;
  }
}

function setPath(target: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.');
  let cur = target;
  for (const p of parts.slice(0, -1)) {
    if (typeof cur[p] !== 'object' || cur[p] === null || Array.isArray(cur[p])) cur[p] = {};
    cur = cur[p] as Record<string, unknown>;
  }
  cur[parts[parts.length - 1] as string] = value;
}

function deepMerge(base: unknown, over: unknown): unknown {
  if (typeof base !== 'object' || base === null || Array.isArray(base)) return over === undefined ? base : over;
  if (typeof over !== 'object' || over === null || Array.isArray(over)) return over === undefined ? base : over;
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [k, v] of Object.entries(over as Record<string, unknown>)) out[k] = deepMerge(out[k], v);
  return out;
}

/** Parses `--key=value` / `--key value` / `--flag` (boolean true) / `--no-flag`. Unknown keys are errors. */
function parseFlags(
  argv: readonly string[],
  known: ReadonlyMap<string, Leaf>,
  deferSections: boolean,
  issues: ConfigIssue[],
): { layer: Record<string, unknown>; configFile?: string } {
  const layer: Record<string, unknown> = {};
  let configFile: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith('--')) {
      issues.push({ key: arg, source: 'flag', message: 'unexpected positional argument' });
      continue;
    }
    let body = arg.slice(2);
    let value: string | undefined;
    const eq = body.indexOf('=');
    if (eq >= 0) {
      value = body.slice(eq + 1);
      body = body.slice(0, eq);
    }
    if (body === 'config') {
      configFile = value ?? argv[++i];
      continue;
    }
    let negated = false;
    if (!known.has(body) && body.startsWith('no-') && known.get(body.slice(3)) === 'boolean') {
      body = body.slice(3);
      negated = true;
    }
    const kind = known.get(body);
    if (!kind) {
      // Before the backend is loaded its section's keys are unknown: leave them to the second pass.
      if (deferSections && backendSectionOf(body) !== undefined) {
        if (value === undefined && !argv[i + 1]?.startsWith('--')) i++;
        continue;
      }
      issues.push({ key: body, source: 'flag', message: 'unknown flag' });
      continue;
    }
    if (kind === 'boolean' && value === undefined) {
      const next = argv[i + 1];
      if (next !== undefined && /^(true|false)$/i.test(next)) value = argv[++i];
      else value = negated ? 'false' : 'true';
    } else if (value === undefined) {
      value = argv[++i];
      if (value === undefined) {
        issues.push({ key: body, source: 'flag', message: 'missing value' });
        continue;
      }
    }
    const v = coerce(body, value ?? '', kind, 'flag', issues);
    if (v !== undefined) setPath(layer, body, v);
  }
  return configFile === undefined ? { layer } : { layer, configFile };
}

function parseEnv(
  env: Readonly<Record<string, string | undefined>>,
  known: ReadonlyMap<string, Leaf>,
  issues: ConfigIssue[],
): Record<string, unknown> {
  const layer: Record<string, unknown> = {};
  for (const [key, kind] of known) {
    const raw = env[envName(key)];
    if (raw === undefined) continue;
    const v = coerce(key, raw, kind, 'env', issues);
    if (v !== undefined) setPath(layer, key, v);
  }
  // The downward API convention.
  if (layer.nodeName === undefined && env.K8S_NODE_NAME) layer.nodeName = env.K8S_NODE_NAME;
  return layer;
}

/** Where {@link loadConfig} reads from. */
export interface ConfigSources {
  /** Config file (YAML or JSON); `--config` in argv and `VEIL_CONFIG` also name one. */
  file?: string;
  /** Defaults to process.env. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Command-line flags (without node/script), e.g. `['--encryption.type=ipsec']`. */
  argv?: readonly string[];
}

/** Which backend sections {@link loadConfig} validates. */
export interface LoadConfigOptions {
  /**
   * The sections to validate (each backend's `config` export): their defaults are merged, their
   * flags and env read, their schema applied. `'defer'` validates core only and leaves flags under
   * `encryption.<section>.` for a second pass once the backend is known (see {@link loadAgentConfig}).
   * Sections of backends not listed are kept as written and not validated. Default: none.
   */
  readonly backends?: readonly BackendConfigSpec[] | 'defer';
}

/**
 * Loads the configuration: defaults < file < env (`VEIL_…`) < flags, then validates core's keys
 * with its schema and each listed backend's section with that backend's schema. Throws
 * {@link ConfigError} listing EVERY bad key (from every layer) at once.
 */
export async function loadConfig(sources: ConfigSources = {}, options: LoadConfigOptions = {}): Promise<AgentConfig> {
  const r = await resolveConfig(sources, options);
  if (r.issues.length > 0) throw new ConfigError(r.issues);
  return r.config as AgentConfig;
}

/** {@link loadConfig} without the throw: every issue, the merged `encryption.type`, and the config when valid. */
async function resolveConfig(
  sources: ConfigSources,
  options: LoadConfigOptions,
): Promise<{ config?: AgentConfig; issues: ConfigIssue[]; type: unknown }> {
  const issues: ConfigIssue[] = [];
  const env = sources.env ?? process.env;
  const specs = options.backends === 'defer' || options.backends === undefined ? [] : options.backends;
  const known = new Map(CORE_LEAVES);
  let defaults: unknown = DEFAULT_CONFIG;
  for (const spec of specs) {
    leaves(spec.defaults, `encryption.${spec.section}`, known);
    defaults = deepMerge(defaults, { encryption: { [spec.section]: spec.defaults } });
  }
  const flags = parseFlags(sources.argv ?? [], known, options.backends === 'defer', issues);
  const envLayer = parseEnv(env, known, issues);
  const file = flags.configFile ?? sources.file ?? env.VEIL_CONFIG;
  let fileLayer: unknown = {};
  if (file !== undefined) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new ConfigError([
        { key: 'config', source: 'file', message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` },
      ]);
    }
    try {
      fileLayer = parseYaml(text) ?? {}; // YAML is a superset of JSON
    } catch (err) {
      throw new ConfigError([
        { key: 'config', source: 'file', message: `${file} is not valid YAML/JSON: ${(err as Error).message}` },
      ]);
    }
    if (typeof fileLayer !== 'object' || fileLayer === null || Array.isArray(fileLayer)) {
      throw new ConfigError([{ key: 'config', source: 'file', message: `${file} must contain a mapping at the top level` }]);
    }
  }
  const merged = deepMerge(deepMerge(deepMerge(defaults, fileLayer), envLayer), flags.layer) as Record<string, unknown>;
  // Backend sections leave the core object before core's strict schema sees it, and come back
  // validated (listed backends) or as written (others: another backend's section is not ours to judge).
  const sections: Record<string, unknown> = {};
  const enc = merged.encryption;
  if (typeof enc === 'object' && enc !== null && !Array.isArray(enc)) {
    const core: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(enc as Record<string, unknown>)) {
      if (CORE_ENCRYPTION_KEYS.has(k)) core[k] = v;
      else if (typeof v === 'object' && v !== null && !Array.isArray(v)) sections[k] = v;
      else
        issues.push({ key: `encryption.${k}`, source: 'merged', message: 'unknown key (a backend section must be a mapping)' });
    }
    merged.encryption = core;
  }
  for (const spec of specs) {
    const r = validateSection(spec, sections[spec.section]);
    if ('issues' in r) issues.push(...r.issues);
    else sections[spec.section] = r.value;
  }
  const result = AgentConfigSchema.safeParse(merged);
  if (!result.success) {
    for (const issue of result.error.issues) {
      if (issue.code === 'unrecognized_keys') {
        for (const k of issue.keys) issues.push({ key: [...issue.path, k].join('.'), source: 'merged', message: 'unknown key' });
      } else {
        issues.push({ key: issue.path.join('.'), source: 'merged', message: issue.message });
      }
    }
  }
  const type = (merged.encryption as { type?: unknown } | undefined)?.type;
  if (issues.length > 0) return { issues, type };
  const data = (result as { data: AgentConfig }).data;
  return { config: { ...data, encryption: { ...data.encryption, ...sections } }, issues, type };
}

/** What {@link loadAgentConfig} returns: the whole validated config and the backend it names. */
export interface AgentConfigAndBackend {
  readonly config: AgentConfig;
  readonly backend: LoadedBackend;
}

/**
 * The composition root's loader: validates core's keys, loads the backend `encryption.type` names,
 * then validates that backend's own section (its `config` export) from the same sources.
 */
export async function loadAgentConfig(sources: ConfigSources = {}, cwd?: string): Promise<AgentConfigAndBackend> {
  const core = await resolveConfig(sources, { backends: 'defer' });
  // Without a usable backend name there is no section to judge: report core's issues now.
  if (typeof core.type !== 'string' || core.type === '') throw new ConfigError(core.issues);
  let backend: LoadedBackend;
  try {
    backend = await loadBackend(core.type, cwd);
  } catch (err) {
    if (core.issues.length > 0) throw new ConfigError(core.issues);
    throw err;
  }
  // Second pass: core's keys and the backend's section together, so one error names every bad key.
  const config = await loadConfig(sources, { backends: backend.config ? [backend.config] : [] });
  return { config, backend };
}
