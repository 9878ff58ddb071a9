import { stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ContainerModule } from 'inversify';
import { type BackendConfigSpec, isBackendConfigSpec } from '../config/backend.js';
import { BackendLoadError } from '../errors.js';

/** Built-in backend names and the packages that implement them. */
const BUILTIN_BACKENDS: Readonly<Record<string, string>> = {
  wireguard: '@veil/backend-wireguard',
  ipsec: '@veil/backend-ipsec',
};

/**
 * Maps a backend name to what `import()` receives: built-in names map to their package; a
 * relative or absolute path (starts with `.` or `/`) becomes a file URL resolved against `cwd`;
 * anything else is used as a package specifier.
 */
export function backendSpecifier(nameOrSpecifier: string, cwd: string = process.cwd()): string {
  const builtin = BUILTIN_BACKENDS[nameOrSpecifier];
  if (builtin) return builtin;
  if (nameOrSpecifier.startsWith('.') || isAbsolute(nameOrSpecifier)) {
    return pathToFileURL(resolve(cwd, nameOrSpecifier)).href;
  }
  return nameOrSpecifier;
}

/** inversify's class check fails across duplicate copies; accept the shape too. */
function isContainerModule(v: unknown): v is ContainerModule {
  if (v instanceof ContainerModule) return true;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as { load?: unknown }).load === 'function' &&
    typeof (v as { id?: unknown }).id === 'number'
  );
}

async function resolveDirectory(href: string): Promise<string> {
  // A directory path means its index.js (ESM has no directory resolution).
  if (!href.startsWith('file:')) return href;
  try {
    const st = await stat(new URL(href));
    if (st.isDirectory()) return new URL('index.js', href.endsWith('/') ? href : `${href}/`).href;
  } catch {
    // Not found: import() reports it with the right code below.
  }
  return href;
}

/** A backend package as loaded: its ContainerModule and, when it has one, its config section. */
export interface LoadedBackend {
  readonly module: ContainerModule;
  /** The package's `config` export (see `defineBackendConfig`); absent for backends without settings. */
  readonly config?: BackendConfigSpec;
}

/**
 * Imports a backend module and returns its default-exported ContainerModule, which must bind
 * `TOKENS.EncryptionBackend`. Throws {@link BackendLoadError}: `MODULE_NOT_FOUND`,
 * `NO_DEFAULT_EXPORT`, `NOT_A_CONTAINER_MODULE` or `IMPORT_FAILED` (the module threw).
 */
export async function loadBackendModule(nameOrSpecifier: string, cwd?: string): Promise<ContainerModule> {
  return (await loadBackend(nameOrSpecifier, cwd)).module;
}

/**
 * {@link loadBackendModule} plus the package's optional `config` export (its own section of the
 * configuration). A `config` export of the wrong shape is `BAD_CONFIG_EXPORT`.
 */
export async function loadBackend(nameOrSpecifier: string, cwd?: string): Promise<LoadedBackend> {
  if (nameOrSpecifier.trim() === '') {
    throw new BackendLoadError('MODULE_NOT_FOUND', nameOrSpecifier, '', 'backend name is empty');
  }
  const specifier = await resolveDirectory(backendSpecifier(nameOrSpecifier, cwd));
  let mod: Record<string, unknown>;
  try {
    mod = (await import(specifier)) as Record<string, unknown>;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND' || code === 'ERR_UNSUPPORTED_DIR_IMPORT') {
      const builtin = BUILTIN_BACKENDS[nameOrSpecifier] !== undefined;
      throw new BackendLoadError(
        'MODULE_NOT_FOUND',
        nameOrSpecifier,
        specifier,
        `backend "${nameOrSpecifier}" not found: cannot import "${specifier}"` +
          (builtin ? ` (install ${specifier})` : ' (expected a built-in name, a package name or a path)'),
        { cause: err },
      );
    }
    throw new BackendLoadError(
      'IMPORT_FAILED',
      nameOrSpecifier,
      specifier,
      `backend "${nameOrSpecifier}" failed to load: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  if (!('default' in mod) || mod.default === undefined) {
    throw new BackendLoadError(
      'NO_DEFAULT_EXPORT',
      nameOrSpecifier,
      specifier,
      `backend "${nameOrSpecifier}" (${specifier}) has no default export; it must default-export a ContainerModule`,
    );
  }
  if (!isContainerModule(mod.default)) {
    throw new BackendLoadError(
      'NOT_A_CONTAINER_MODULE',
      nameOrSpecifier,
      specifier,
      `backend "${nameOrSpecifier}" (${specifier}) default-exports ${typeof mod.default}, not an inversify ContainerModule`,
    );
  }
  if (mod.config === undefined) return { module: mod.default };
  if (!isBackendConfigSpec(mod.config)) {
    throw new BackendLoadError(
      'BAD_CONFIG_EXPORT',
      nameOrSpecifier,
      specifier,
      `backend "${nameOrSpecifier}" (${specifier}) exports \`config\` that is not a backend config section (use defineBackendConfig from @veil/agent-core)`,
    );
  }
  return { module: mod.default, config: mod.config };
}
