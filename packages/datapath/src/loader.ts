import { errorMessage } from '@veil/agent-core';
import { join } from 'node:path';
import { BpfObjectMissingError, Datapath as BpfObjectDatapath, objectPath as defaultObjectPath } from '@veil/bpf';
import { ObjectSpec, VerifierError } from 'libbpf-ts';
import { codeOf, DatapathLoadError } from './errors.js';
import type { ResolvedOptions } from './options.js';
import { PINNED_MAPS } from './pins.js';

/** Opens the object with every shared map pinned under pinDir (reusing compatible pins). */
export function loadPinned(opts: ResolvedOptions): BpfObjectDatapath {
  let path: string;
  try {
    path = opts.objectPath ?? defaultObjectPath();
  } catch (e) {
    if (e instanceof BpfObjectMissingError) {
      throw new DatapathLoadError(
        'object-missing',
        e.path,
        opts.pinDir,
        `the BPF object ${e.path} is missing: build it with \`npm run build -w @veil/bpf\``,
        { cause: e },
      );
    }
    throw e;
  }
  let spec: ObjectSpec;
  try {
    spec = ObjectSpec.open(path);
  } catch (e) {
    const missing = codeOf(e) === 'ENOENT';
    throw new DatapathLoadError(
      missing ? 'object-missing' : 'open',
      path,
      opts.pinDir,
      missing
        ? `the BPF object ${path} is missing: build it with \`npm run build -w @veil/bpf\``
        : `cannot open the BPF object ${path}: ${errorMessage(e)}`,
      { cause: e },
    );
  }
  let obj;
  try {
    if (opts.ipcacheMaxEntries !== undefined) spec.setMaxEntries('ipcache', opts.ipcacheMaxEntries);
    if (opts.strictCidrsMaxEntries !== undefined) spec.setMaxEntries('strict_cidrs', opts.strictCidrsMaxEntries);
    for (const m of PINNED_MAPS) spec.setPinPath(m, join(opts.pinDir, m));
  } catch (e) {
    spec.close();
    throw new DatapathLoadError('open', path, opts.pinDir, `preparing ${path} failed: ${errorMessage(e)}`, { cause: e });
  }
  try {
    obj = spec.load();
  } catch (e) {
    if (e instanceof VerifierError) {
      throw new DatapathLoadError(
        'load',
        path,
        opts.pinDir,
        `the verifier rejected ${e.program ?? 'a program'} of ${path}: ${e.log.split('\n').slice(-3).join(' | ')}`,
        { cause: e },
      );
    }
    // libbpf refuses to reuse a pinned map whose type/sizes/flags differ (EINVAL).
    const incompatible = codeOf(e) === 'EINVAL';
    throw new DatapathLoadError(
      incompatible ? 'pin-incompatible' : 'load',
      path,
      opts.pinDir,
      incompatible
        ? `loading ${path} failed: a map pinned under ${opts.pinDir} is incompatible (different size or max entries?): purge it (BpfDatapath.purge) and restart: ${errorMessage(e)}`
        : `loading ${path} with maps pinned under ${opts.pinDir} failed: ${errorMessage(e)}`,
      { cause: e },
    );
  }
  try {
    return new BpfObjectDatapath(obj);
  } catch (e) {
    obj.close();
    throw new DatapathLoadError('load', path, opts.pinDir, `${path} lacks Veil's programs or maps: ${errorMessage(e)}`, {
      cause: e,
    });
  }
}
