import { ConfigError, type ConfigIssue } from '../errors.js';
import type { AgentConfig } from './schema.js';

/**
 * The validator half of a Standard Schema (https://standardschema.dev): zod 4, valibot and
 * arktype schemas all carry it, so a backend validates its section with whatever it already uses.
 */
export interface SectionSchema<T> {
  readonly '~standard': {
    readonly version: 1;
    readonly vendor: string;
    validate(value: unknown): SectionResult<T> | Promise<SectionResult<T>>;
  };
}

/** What {@link SectionSchema} validation returns. */
export type SectionResult<T> =
  | { readonly value: T; readonly issues?: undefined }
  | {
      readonly issues: readonly {
        readonly message: string;
        readonly path?: readonly (PropertyKey | { readonly key: PropertyKey })[] | undefined;
      }[];
    };

/**
 * A backend's own configuration section, `encryption.<section>`: its schema and its defaults. The
 * backend package exports it as `config` beside its default-exported ContainerModule; core merges
 * the defaults, reads `--encryption.<section>.<key>` flags and `VEIL_ENCRYPTION_<SECTION>_<KEY>`
 * env typed by those defaults, validates with the schema and names bad keys by their full path.
 */
export interface BackendConfigSpec<T = unknown> {
  /** The key under `encryption`, e.g. `wireguard`. Must not be one of core's keys. */
  readonly section: string;
  readonly schema: SectionSchema<T>;
  /** Every key with its default; the types of flags and env values come from here. */
  readonly defaults: T;
}

/** Core's own keys under `encryption`: no backend may claim them as its section. */
export const CORE_ENCRYPTION_KEYS: ReadonlySet<string> = new Set(['enabled', 'type', 'nodeEncryption', 'strictMode']);

/** Declares a backend's section (checks the name once, at module load). */
export function defineBackendConfig<T>(spec: BackendConfigSpec<T>): BackendConfigSpec<T> {
  if (!/^[a-zA-Z][a-zA-Z0-9]*$/.test(spec.section) || CORE_ENCRYPTION_KEYS.has(spec.section)) {
    throw new ConfigError([
      {
        key: `encryption.${spec.section}`,
        source: 'merged',
        message: 'is not a valid backend section name (letters and digits, not a core key)',
      },
    ]);
  }
  return spec;
}

/** True when `v` has the shape of a {@link BackendConfigSpec} (specs cross package copies). */
export function isBackendConfigSpec(v: unknown): v is BackendConfigSpec {
  if (typeof v !== 'object' || v === null) return false;
  const s = v as Partial<BackendConfigSpec>;
  return (
    typeof s.section === 'string' &&
    typeof s.schema === 'object' &&
    s.schema !== null &&
    typeof s.schema['~standard']?.validate === 'function' &&
    'defaults' in s
  );
}

function pathText(path: readonly (PropertyKey | { readonly key: PropertyKey })[] | undefined): string {
  return (path ?? []).map((p) => String(typeof p === 'object' ? p.key : p)).join('.');
}

/** Validates one section; issues carry the full key path (`encryption.<section>.<key>`). */
export function validateSection<T>(
  spec: BackendConfigSpec<T>,
  raw: unknown,
  source: ConfigIssue['source'] = 'merged',
): { value: T } | { issues: ConfigIssue[] } {
  const result = spec.schema['~standard'].validate(raw ?? {});
  if (result instanceof Promise)
    throw new TypeError(
      `the schema of encryption.${spec.section} validates asynchronously; backend sections must validate synchronously`,
    );
  if (result.issues === undefined) return { value: result.value };
  const key = (rest: string): string => `encryption.${spec.section}${rest ? `.${rest}` : ''}`;
  return {
    issues: result.issues.flatMap((i) => {
      // zod reports unknown keys as one issue listing them; name each like core's own unknown keys.
      const keys =
        (i as { code?: unknown; keys?: unknown }).code === 'unrecognized_keys' ? (i as { keys?: unknown }).keys : undefined;
      const at = pathText(i.path);
      if (Array.isArray(keys))
        return keys.map((k) => ({ key: key([at, String(k)].filter(Boolean).join('.')), source, message: 'unknown key' }));
      return [{ key: key(at), source, message: i.message }];
    }),
  };
}

/**
 * The backend's validated section of `config` (defaults filled). Throws {@link ConfigError} naming
 * each bad key. Cheap enough to call once per backend construction.
 */
export function backendSection<T>(config: AgentConfig, spec: BackendConfigSpec<T>): T {
  const r = validateSection(spec, config.encryption[spec.section]);
  if ('issues' in r) throw new ConfigError(r.issues);
  return r.value;
}
