import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { TemplateError } from '../errors.js';
import { parseTemplate, type Arg, type Cmd, type Node, type ParsedTemplate, type Pipe } from './parse.js';
import { empty, formatGoFloat, goJson, goKindName, goQuote, goTypeName, goYaml, GoInt, GoStruct, isMap, printValue, strval, truth } from './values.js';

/** Helm's include recursion limit. */
const MAX_DEPTH = 1000;

/** Thrown inside a function; the executor adds the template position. */
class FuncError extends Error {}

type Fn = (...args: unknown[]) => unknown;

function wantString(fn: string, v: unknown): string {
  if (typeof v !== 'string') throw new FuncError(`error calling ${fn}: wrong type for value; expected string; got ${goTypeName(v)}`);
  return v;
}

function wantInt(fn: string, v: unknown): number {
  // Go converts only int-kind arguments to an int parameter; a float64 from values is refused.
  if (!(v instanceof GoInt)) throw new FuncError(`error calling ${fn}: wrong type for value; expected int; got ${goTypeName(v)}`);
  return v.value;
}

type Basic = { kind: 'string' | 'float' | 'int' | 'bool'; v: unknown };

function basic(fn: string, v: unknown): Basic {
  if (typeof v === 'string') return { kind: 'string', v };
  if (typeof v === 'number') return { kind: 'float', v };
  if (v instanceof GoInt) return { kind: 'int', v: v.value };
  if (typeof v === 'boolean') return { kind: 'bool', v };
  if (v === undefined || v === null) {
    // Go's answer for nil operands changed across versions; refuse rather than guess.
    throw new FuncError(`error calling ${fn}: comparing a nil (missing) value is not supported by this renderer`);
  }
  throw new FuncError(`error calling ${fn}: invalid type for comparison`);
}

function eqOne(a: unknown, b: unknown): boolean {
  const x = basic('eq', a);
  const y = basic('eq', b);
  if (x.kind !== y.kind) throw new FuncError('error calling eq: incompatible types for comparison');
  return x.v === y.v;
}

function indent(n: unknown, s: unknown): string {
  const pad = ' '.repeat(wantInt('indent', n));
  return pad + wantString('indent', s).replace(/\n/g, '\n' + pad);
}

/** fmt.Sprintf for the verbs charts use: %s %v %d %q %t %% (with no flags/width). */
export function goSprintf(format: string, args: readonly unknown[]): string {
  let i = 0;
  return format.replace(/%(.)/gs, (whole, verb: string) => {
    if (verb === '%') return '%';
    if (i >= args.length) return `%!${verb}(MISSING)`;
    const a = args[i++];
    switch (verb) {
      case 'v':
        return a === undefined || a === null ? '<nil>' : strval(a);
      case 's':
        if (typeof a === 'string') return a;
        return a === undefined || a === null ? '%!s(<nil>)' : `%!s(${goTypeName(a)}=${strval(a)})`;
      case 'd':
        if (a instanceof GoInt) return String(a.value);
        return `%!d(${goTypeName(a)}=${strval(a)})`;
      case 'q':
        return typeof a === 'string' ? goQuote(a) : `%!q(${goTypeName(a)}=${strval(a)})`;
      case 't':
        return typeof a === 'boolean' ? String(a) : `%!t(${goTypeName(a)}=${strval(a)})`;
      default:
        throw new FuncError(`printf: verb %${verb} is not supported by this renderer`);
    }
  }) + (i < args.length ? `%!(EXTRA ${args.slice(i).map((a) => `${goTypeName(a)}=${strval(a)}`).join(', ')})` : '');
}

/** fmt.Sprint: spaces between operands when neither side is a string. */
function goSprint(args: readonly unknown[]): string {
  let out = '';
  args.forEach((a, idx) => {
    if (idx > 0 && typeof a !== 'string' && typeof args[idx - 1] !== 'string') out += ' ';
    out += a === undefined || a === null ? '<nil>' : strval(a);
  });
  return out;
}

/**
 * The functions this renderer implements, with text/template builtins' and Sprig/Helm's
 * semantics. `and`, `or`, `include` and `tpl`-like forms are handled by the executor.
 */
const FUNCS: Record<string, Fn> = {
  // text/template builtins
  eq: (a, ...rest) => {
    if (rest.length === 0) throw new FuncError('error calling eq: missing argument for comparison');
    return rest.some((b) => eqOne(a, b));
  },
  ne: (a, b) => !eqOne(a, b),
  not: (a) => !truth(a),
  len: (a) => {
    if (typeof a === 'string') return new GoInt(Buffer.byteLength(a, 'utf8'));
    if (Array.isArray(a)) return new GoInt(a.length);
    if (isMap(a)) return new GoInt(Object.keys(a).length);
    throw new FuncError(`error calling len: len of type ${goTypeName(a)}`);
  },
  print: (...args) => goSprint(args),
  printf: (format, ...args) => goSprintf(wantString('printf', format), args),
  // Sprig
  default: (d, ...given) => (given.length === 0 || empty(given[0]) ? d : given[0]),
  quote: (...args) => args.filter((a) => a !== undefined && a !== null).map((a) => goQuote(strval(a))).join(' '),
  squote: (...args) => args.filter((a) => a !== undefined && a !== null).map((a) => `'${strval(a)}'`).join(' '),
  toString: (a: unknown) => strval(a),
  indent: (n, s) => indent(n, s),
  nindent: (n, s) => '\n' + indent(n, s),
  trunc: (n, s) => {
    const c = wantInt('trunc', n);
    const str = wantString('trunc', s);
    if (c < 0 && str.length + c > 0) return str.slice(str.length + c);
    if (c >= 0 && str.length > c) return str.slice(0, c);
    return str;
  },
  trimSuffix: (suffix, s) => {
    const a = wantString('trimSuffix', suffix);
    const str = wantString('trimSuffix', s);
    return a !== '' && str.endsWith(a) ? str.slice(0, -a.length) : str;
  },
  join: (sep, list) => {
    const s = wantString('join', sep);
    if (list === undefined || list === null) return '';
    const items = Array.isArray(list) ? list : [list];
    return items.filter((x) => x !== undefined && x !== null).map(strval).join(s);
  },
  b64enc: (s) => Buffer.from(wantString('b64enc', s), 'utf8').toString('base64'),
  sha256sum: (s) => createHash('sha256').update(wantString('sha256sum', s), 'utf8').digest('hex'),
  // path.Dir: everything up to the last slash, Clean'ed.
  dir: (s) => {
    const str = wantString('dir', s);
    const d = str.slice(0, str.lastIndexOf('/') + 1);
    if (d === '') return '.';
    const n = posix.normalize(d);
    return n.length > 1 ? n.replace(/\/+$/, '') : n;
  },
  base: (s) => {
    const str = wantString('base', s);
    if (str === '') return '.';
    const trimmed = str.replace(/\/+$/, '');
    return trimmed === '' ? '/' : posix.basename(trimmed);
  },
  // Sprig's kindIs: the Go reflect.Kind name of a value.
  kindIs: (kind, v) => wantString('kindIs', kind) === goKindName(v),
  // Helm
  toYaml: (v) => goYaml(v),
  toJson: (v) => goJson(v),
  required: (msg, v) => {
    if (v === undefined || v === null || v === '') throw new FuncError(`error calling required: ${wantString('required', msg)}`);
    return v;
  },
};

/** Names the executor treats specially (lazy arguments or access to other templates). */
const SPECIAL = new Set(['and', 'or', 'include']);

/** Every function name templates may use. */
export const FUNCTION_NAMES: ReadonlySet<string> = new Set([...Object.keys(FUNCS), ...SPECIAL]);

interface Frame {
  vars: Array<{ name: string; value: unknown }>;
}

/** A set of parsed templates sharing `define`s, like Helm's one template tree per chart. */
export class TemplateSet {
  private readonly files = new Map<string, ParsedTemplate>();
  private readonly defines = new Map<string, { file: string; nodes: Node[] }>();

  /** Parses and adds a file; `define`s become visible to every file. */
  add(name: string, source: string): void {
    const parsed = parseTemplate(name, source, FUNCTION_NAMES);
    this.files.set(name, parsed);
    for (const [d, nodes] of parsed.defines) {
      // Like Helm's (single tree) behaviour: a later definition replaces an earlier one.
      this.defines.set(d, { file: name, nodes });
    }
  }

  has(name: string): boolean {
    return this.files.has(name);
  }

  /** Renders file `name` with `data` as dot (and `$`). */
  render(name: string, data: unknown): string {
    const file = this.files.get(name);
    if (!file) throw new TemplateError('EXEC', name, 0, `no template "${name}"`);
    return new Exec(this.defines, name, data).run(file.root);
  }
}

class Exec {
  private depth = 0;
  private line = 0;
  constructor(
    private readonly defines: ReadonlyMap<string, { file: string; nodes: Node[] }>,
    private file: string,
    private readonly root: unknown,
  ) {}

  run(nodes: Node[]): string {
    const out: string[] = [];
    this.walkList(nodes, this.root, { vars: [{ name: '$', value: this.root }] }, out);
    return out.join('');
  }

  private fail(detail: string, code: 'EXEC' | 'UNSUPPORTED' = 'EXEC'): never {
    throw new TemplateError(code, this.file, this.line, detail);
  }

  private walkList(nodes: Node[], dot: unknown, frame: Frame, out: string[]): void {
    // Variables declared in a list live until its end (text/template scoping).
    const mark = frame.vars.length;
    for (const n of nodes) this.walk(n, dot, frame, out);
    frame.vars.length = mark;
  }

  private walk(n: Node, dot: unknown, frame: Frame, out: string[]): void {
    switch (n.kind) {
      case 'text':
        out.push(n.text);
        return;
      case 'action': {
        this.line = n.pipe.line;
        const v = this.evalPipe(n.pipe, dot, frame);
        if (n.pipe.decl.length === 0) out.push(printValue(v));
        return;
      }
      case 'if':
      case 'with': {
        this.line = n.line;
        const mark = frame.vars.length;
        const v = this.evalPipe(n.pipe, dot, frame);
        if (truth(v)) this.walkList(n.list, n.kind === 'with' ? v : dot, frame, out);
        else if (n.elseList) this.walkList(n.elseList, dot, frame, out);
        frame.vars.length = mark;
        return;
      }
      case 'range': {
        this.line = n.line;
        const mark = frame.vars.length;
        const decl = n.pipe.decl;
        const v = this.evalPipe({ ...n.pipe, decl: [] }, dot, frame);
        let entries: Array<[unknown, unknown]>;
        if (v === undefined || v === null) entries = [];
        else if (Array.isArray(v)) entries = v.map((x, idx) => [new GoInt(idx), x]);
        else if (isMap(v)) entries = Object.keys(v).sort().map((k) => [k, v[k]]);
        else return this.fail(`range can't iterate over ${printValue(v)} (${goTypeName(v)})`, 'UNSUPPORTED');
        if (entries.length === 0) {
          if (n.elseList) this.walkList(n.elseList, dot, frame, out);
          return;
        }
        for (const [key, elem] of entries) {
          if (decl.length === 1) frame.vars.push({ name: decl[0] as string, value: elem });
          if (decl.length === 2) frame.vars.push({ name: decl[0] as string, value: key }, { name: decl[1] as string, value: elem });
          this.walkList(n.list, elem, frame, out);
          frame.vars.length = mark;
        }
        return;
      }
      case 'template': {
        this.line = n.line;
        const data = n.pipe ? this.evalPipe(n.pipe, dot, frame) : undefined;
        out.push(this.include(n.name, data));
        return;
      }
    }
  }

  private include(name: string, data: unknown): string {
    const d = this.defines.get(name);
    if (!d) this.fail(`no template "${name}" associated with template`);
    if (++this.depth > MAX_DEPTH) this.fail(`rendering template has a nested reference name: ${name}: include depth exceeded ${MAX_DEPTH}`);
    const saved = { file: this.file, line: this.line };
    this.file = d.file;
    const out: string[] = [];
    try {
      this.walkList(d.nodes, data, { vars: [{ name: '$', value: data }] }, out);
    } finally {
      this.file = saved.file;
      this.line = saved.line;
      this.depth--;
    }
    return out.join('');
  }

  private evalPipe(pipe: Pipe, dot: unknown, frame: Frame): unknown {
    this.line = pipe.line;
    let value: unknown;
    pipe.cmds.forEach((cmd, idx) => {
      value = this.evalCmd(cmd, dot, frame, idx > 0, value);
    });
    if (pipe.decl.length > 0) {
      const name = pipe.decl[0] as string;
      if (pipe.assign) {
        const slot = [...frame.vars].reverse().find((v) => v.name === name);
        if (!slot) this.fail(`undefined variable: ${name}`);
        slot.value = value;
      } else {
        frame.vars.push({ name, value });
      }
    }
    return value;
  }

  private evalCmd(cmd: Cmd, dot: unknown, frame: Frame, hasFinal: boolean, final: unknown): unknown {
    const [first, ...rest] = cmd.args as [Arg, ...Arg[]];
    if (first.kind !== 'ident') {
      if (rest.length > 0 || hasFinal) this.fail(`can't give argument to non-function ${describe(first)}`);
      return this.evalArg(first, dot, frame);
    }
    const name = first.name;
    if (name === 'and' || name === 'or') {
      // Go 1.18+: evaluated left to right, stopping at the first falsy (and) / truthy (or) one.
      const lazy: Array<() => unknown> = rest.map((a) => () => this.evalArg(a, dot, frame));
      if (hasFinal) lazy.push(() => final);
      if (lazy.length === 0) this.fail(`wrong number of args for ${name}: want at least 1 got 0`);
      let v: unknown;
      for (const get of lazy) {
        v = get();
        if (name === 'and' ? !truth(v) : truth(v)) return v;
      }
      return v;
    }
    const args = rest.map((a) => this.evalArg(a, dot, frame));
    if (hasFinal) args.push(final);
    if (name === 'include') {
      if (args.length !== 2) this.fail(`wrong number of args for include: want 2 got ${args.length}`);
      const tname = args[0];
      if (typeof tname !== 'string') this.fail(`error calling include: template name must be a string, got ${goTypeName(tname)}`);
      return this.include(tname, args[1]);
    }
    const fn = FUNCS[name] as Fn;
    const arity = ARITY[name];
    if (arity !== undefined) {
      const [min, max] = arity;
      if (args.length < min || args.length > max) {
        this.fail(`wrong number of args for ${name}: want ${min === max ? min : `${min}..${max === Infinity ? 'n' : max}`} got ${args.length}`);
      }
    }
    try {
      return fn(...args);
    } catch (e) {
      if (e instanceof FuncError) this.fail(e.message);
      throw e;
    }
  }

  private evalArg(arg: Arg, dot: unknown, frame: Frame): unknown {
    switch (arg.kind) {
      case 'dot':
        return dot;
      case 'field':
        return this.chain(dot, arg.chain);
      case 'var': {
        const slot = [...frame.vars].reverse().find((v) => v.name === arg.name);
        if (!slot) this.fail(`undefined variable "${arg.name}"`);
        return this.chain(slot.value, arg.chain);
      }
      case 'number':
        return arg.int ? new GoInt(arg.value) : arg.value;
      case 'string':
      case 'bool':
        return arg.value;
      case 'nil':
        return null;
      case 'pipe':
        return this.chain(this.evalPipe(arg.pipe, dot, frame), arg.chain);
      case 'ident':
        // A bare function name as an argument is a call with no arguments.
        return this.evalCmd({ args: [arg] }, dot, frame, false, undefined);
    }
  }

  private chain(v: unknown, names: readonly string[]): unknown {
    let cur = v;
    for (const name of names) {
      if (cur instanceof GoStruct) {
        if (!(name in cur.fields)) this.fail(`can't evaluate field ${name} in type ${cur.typeName}`);
        cur = cur.fields[name];
      } else if (isMap(cur)) {
        cur = Object.prototype.hasOwnProperty.call(cur, name) ? cur[name] : undefined;
      } else if (cur === undefined || cur === null) {
        this.fail(`nil pointer evaluating interface {}.${name}`);
      } else {
        this.fail(`can't evaluate field ${name} in type ${goTypeName(cur)}`);
      }
    }
    return cur;
  }
}

function describe(a: Arg): string {
  switch (a.kind) {
    case 'field':
      return '.' + a.chain.join('.');
    case 'var':
      return a.name + a.chain.map((c) => '.' + c).join('');
    case 'string':
      return goQuote(a.value);
    case 'number':
      return formatGoFloat(a.value);
    default:
      return a.kind;
  }
}

/** Argument counts checked before calling (Go checks them against the function's signature). */
const ARITY: Record<string, [number, number]> = {
  eq: [2, Infinity],
  ne: [2, 2],
  not: [1, 1],
  len: [1, 1],
  print: [0, Infinity],
  printf: [1, Infinity],
  default: [1, 2],
  quote: [0, Infinity],
  squote: [0, Infinity],
  toString: [1, 1] as [number, number],
  indent: [2, 2],
  nindent: [2, 2],
  trunc: [2, 2],
  trimSuffix: [2, 2],
  join: [2, 2],
  b64enc: [1, 1],
  sha256sum: [1, 1],
  dir: [1, 1],
  base: [1, 1],
  kindIs: [2, 2],
  toYaml: [1, 1],
  toJson: [1, 1],
  required: [2, 2],
};
