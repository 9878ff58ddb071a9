/** A JSON value as it appears in Kubernetes objects. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A patch body could not be applied; `status` is the HTTP status the API server would answer. */
export class PatchError extends Error {
  override name = 'PatchError';
  constructor(
    message: string,
    readonly status: 400 | 422,
  ) {
    super(message);
  }
}

function isObject(v: unknown): v is { [key: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** RFC 7386 JSON merge patch: objects merge recursively, `null` deletes, everything else replaces. */
export function mergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return structuredClone(patch);
  const out: { [key: string]: Json } = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k] ?? null, v);
  }
  return out;
}

interface JsonPatchOp {
  op: string;
  path: string;
  from?: string;
  value?: Json;
}

function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new PatchError(`invalid JSON pointer "${pointer}"`, 400);
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function resolveParent(doc: Json, tokens: string[], pointer: string): { parent: Json; key: string } {
  let cur: Json = doc;
  for (const t of tokens.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[Number(t)] ?? null;
    else if (isObject(cur)) cur = cur[t] ?? null;
    else cur = null;
    if (cur === null) throw new PatchError(`path "${pointer}" does not exist`, 422);
  }
  return { parent: cur, key: tokens[tokens.length - 1] ?? '' };
}

function getAt(doc: Json, pointer: string): Json | undefined {
  let cur: Json | undefined = doc;
  for (const t of parsePointer(pointer)) {
    if (Array.isArray(cur)) cur = cur[Number(t)];
    else if (isObject(cur)) cur = cur[t];
    else return undefined;
    if (cur === undefined) return undefined;
  }
  return cur;
}

function removeAt(doc: Json, pointer: string): Json {
  const tokens = parsePointer(pointer);
  if (tokens.length === 0) throw new PatchError('cannot remove the document root', 422);
  const { parent, key } = resolveParent(doc, tokens, pointer);
  if (Array.isArray(parent)) {
    const i = Number(key);
    if (!Number.isInteger(i) || i < 0 || i >= parent.length) throw new PatchError(`path "${pointer}" does not exist`, 422);
    return parent.splice(i, 1)[0] as Json;
  }
  if (isObject(parent) && key in parent) {
    const v = parent[key] as Json;
    delete parent[key];
    return v;
  }
  throw new PatchError(`path "${pointer}" does not exist`, 422);
}

function addAt(doc: Json, pointer: string, value: Json, replace: boolean): Json {
  const tokens = parsePointer(pointer);
  if (tokens.length === 0) return value;
  const { parent, key } = resolveParent(doc, tokens, pointer);
  if (Array.isArray(parent)) {
    const i = key === '-' ? parent.length : Number(key);
    if (!Number.isInteger(i) || i < 0 || i > parent.length || (replace && i >= parent.length)) {
      throw new PatchError(`path "${pointer}" is out of range`, 422);
    }
    if (replace) parent[i] = value;
    else parent.splice(i, 0, value);
  } else if (isObject(parent)) {
    if (replace && !(key in parent)) throw new PatchError(`path "${pointer}" does not exist`, 422);
    parent[key] = value;
  } else {
    throw new PatchError(`path "${pointer}" does not exist`, 422);
  }
  return doc;
}

/** RFC 6902 JSON patch (add, remove, replace, move, copy, test). Operates on a copy. */
export function jsonPatch(target: Json, ops: unknown): Json {
  if (!Array.isArray(ops)) throw new PatchError('JSON patch body must be an array of operations', 400);
  let doc = structuredClone(target);
  for (const raw of ops as JsonPatchOp[]) {
    if (!isObject(raw) || typeof raw.op !== 'string' || typeof raw.path !== 'string') {
      throw new PatchError('each JSON patch operation needs "op" and "path"', 400);
    }
    switch (raw.op) {
      case 'add':
        doc = addAt(doc, raw.path, structuredClone(raw.value ?? null), false);
        break;
      case 'replace':
        doc = addAt(doc, raw.path, structuredClone(raw.value ?? null), true);
        break;
      case 'remove':
        removeAt(doc, raw.path);
        break;
      case 'move': {
        if (typeof raw.from !== 'string') throw new PatchError('"move" needs "from"', 400);
        const v = removeAt(doc, raw.from);
        doc = addAt(doc, raw.path, v, false);
        break;
      }
      case 'copy': {
        if (typeof raw.from !== 'string') throw new PatchError('"copy" needs "from"', 400);
        const v = getAt(doc, raw.from);
        if (v === undefined) throw new PatchError(`path "${raw.from}" does not exist`, 422);
        doc = addAt(doc, raw.path, structuredClone(v), false);
        break;
      }
      case 'test': {
        const v = getAt(doc, raw.path);
        if (JSON.stringify(v) !== JSON.stringify(raw.value)) {
          throw new PatchError(`test operation failed at "${raw.path}"`, 422);
        }
        break;
      }
      default:
        throw new PatchError(`unknown JSON patch op "${raw.op}"`, 400);
    }
  }
  return doc;
}
