import { TemplateError } from '../errors.js';

/*
 * A parser for the subset of Go's text/template that Helm charts use. It follows
 * text/template/parse: actions are `{{ … }}`, `{{- ` / ` -}}` trim the adjacent text's whitespace
 * (space, \t, \r, \n), comments are `{{/* … *\/}}`, and `else if` / `else with` chain without
 * an extra `end`. Constructs outside the subset (`block`, `break`, `continue`, char constants,
 * unknown functions) are parse errors, so nothing renders silently wrong.
 */

export type Arg =
  | { kind: 'field'; chain: string[] } // .a.b (relative to dot)
  | { kind: 'dot' }
  | { kind: 'var'; name: string; chain: string[] } // $x.a, $ (name '$')
  | { kind: 'ident'; name: string } // a function
  | { kind: 'string'; value: string }
  | { kind: 'number'; value: number; int: boolean } // int: an integer constant (Go int), else float64
  | { kind: 'bool'; value: boolean }
  | { kind: 'nil' }
  | { kind: 'pipe'; pipe: Pipe; chain: string[] };

export interface Cmd {
  args: Arg[];
}

export interface Pipe {
  /** Declared (`:=`) or assigned (`=`) variables. */
  decl: string[];
  assign: boolean;
  cmds: Cmd[];
  line: number;
}

export type Node =
  | { kind: 'text'; text: string }
  | { kind: 'action'; pipe: Pipe }
  | { kind: 'if' | 'with' | 'range'; pipe: Pipe; list: Node[]; elseList: Node[] | undefined; line: number }
  | { kind: 'template'; name: string; pipe: Pipe | undefined; line: number };

/** A parsed file: its body and the `define`d templates it contributes. */
export interface ParsedTemplate {
  name: string;
  root: Node[];
  defines: Map<string, Node[]>;
}

type Tok =
  | { t: 'field'; v: string; sp: boolean }
  | { t: 'dot' }
  | { t: 'var'; v: string }
  | { t: 'ident'; v: string }
  | { t: 'string'; v: string }
  | { t: 'number'; v: number; int: boolean }
  | { t: '(' | ')' | '|' | ':=' | '=' | ',' };

interface TextItem {
  kind: 'text';
  text: string;
}
interface ActionItem {
  kind: 'action';
  toks: Tok[];
  line: number;
}
type Item = TextItem | ActionItem;

const SPACE = /[ \t\r\n]/;
const KEYWORDS = new Set(['if', 'else', 'end', 'range', 'with', 'define', 'template', 'block', 'break', 'continue']);

/** Splits a file into text and tokenized actions, applying trim markers. */
function lex(name: string, src: string): Item[] {
  const items: Item[] = [];
  let pos = 0;
  let trimNext = false;
  const lineAt = (p: number): number => src.slice(0, p).split('\n').length;
  const pushText = (text: string): void => {
    if (trimNext) text = text.replace(/^[ \t\r\n]+/, '');
    trimNext = false;
    if (text) items.push({ kind: 'text', text });
  };
  while (pos < src.length) {
    const open = src.indexOf('{{', pos);
    if (open < 0) {
      pushText(src.slice(pos));
      break;
    }
    let text = src.slice(pos, open);
    let p = open + 2;
    const line = lineAt(open);
    // `{{- ` needs the space: `{{-3}}` is the number -3.
    if (src[p] === '-' && SPACE.test(src[p + 1] ?? '')) {
      text = text.replace(/[ \t\r\n]+$/, '');
      p += 2;
    }
    pushText(text);
    // A comment starts right after the delimiter (or its trim marker), as in Go: `{{ /*` is not one.
    if (src.startsWith('/*', p)) {
      const close = src.indexOf('*/', p + 2);
      if (close < 0) throw new TemplateError('PARSE', name, line, 'unclosed comment');
      p = close + 2;
      const m = /^([ \t\r\n]-)?\}\}/.exec(src.slice(p));
      if (!m) throw new TemplateError('PARSE', name, line, 'comment ends before closing delimiter');
      trimNext = m[1] !== undefined;
      pos = p + m[0].length;
      continue;
    }
    const toks: Tok[] = [];
    for (;;) {
      // Go's lexer emits spaces as tokens: `.a.b .c` is two operands, `.a.b.c` one chain.
      const before = p;
      while (SPACE.test(src[p] ?? '')) {
        // ` -}}` : right trim marker.
        if (src.startsWith('-}}', p + 1)) break;
        p++;
      }
      const sp = p > before || toks.length === 0;
      if (SPACE.test(src[p] ?? '') && src.startsWith('-}}', p + 1)) {
        trimNext = true;
        p += 4;
        break;
      }
      if (src.startsWith('}}', p)) {
        p += 2;
        break;
      }
      if (p >= src.length) throw new TemplateError('PARSE', name, line, 'unclosed action');
      const c = src[p] as string;
      const rest = src.slice(p);
      let m: RegExpExecArray | null;
      if (c === '"') {
        m = /^"(?:[^"\\\n]|\\.)*"/.exec(rest);
        if (!m) throw new TemplateError('PARSE', name, line, 'unterminated quoted string');
        toks.push({ t: 'string', v: unquoteGo(m[0], name, line) });
      } else if (c === '`') {
        const close = src.indexOf('`', p + 1);
        if (close < 0) throw new TemplateError('PARSE', name, line, 'unterminated raw quoted string');
        m = [src.slice(p, close + 1)] as unknown as RegExpExecArray;
        toks.push({ t: 'string', v: src.slice(p + 1, close) });
      } else if (c === "'") {
        throw new TemplateError('UNSUPPORTED', name, line, 'character constants are not supported');
      } else if ((m = /^\.[A-Za-z_][A-Za-z0-9_]*/.exec(rest))) {
        toks.push({ t: 'field', v: m[0].slice(1), sp });
      } else if ((m = /^\$[A-Za-z0-9_]*/.exec(rest))) {
        toks.push({ t: 'var', v: m[0] });
      } else if ((m = /^[-+]?(0[xX][0-9a-fA-F_]+|0[oO]?[0-7_]+|0[bB][01_]+|(\d[\d_]*)?\.?\d[\d_]*([eE][-+]?\d+)?)(?![A-Za-z0-9_.])/.exec(rest))) {
        const v = Number(m[0].replace(/_/g, '').replace(/^([-+]?)0([0-7]+)$/, '$10o$2'));
        if (!Number.isFinite(v)) throw new TemplateError('PARSE', name, line, `bad number syntax: ${m[0]}`);
        // Go: a constant without . e E p P is an int, otherwise a float64.
        const int = !/^[-+]?0[xX]/.test(m[0]) ? !/[.eE]/.test(m[0]) : !/[pP]/.test(m[0]);
        toks.push({ t: 'number', v, int: int && Number.isSafeInteger(v) });
      } else if (c === '.') {
        m = ['.'] as unknown as RegExpExecArray;
        toks.push({ t: 'dot' });
      } else if ((m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(rest))) {
        toks.push({ t: 'ident', v: m[0] });
      } else if ((m = /^(:=|[()|=,])/.exec(rest))) {
        toks.push({ t: m[0] as '(' | ')' | '|' | ':=' | '=' | ',' });
      } else {
        throw new TemplateError('PARSE', name, line, `unexpected "${c}" in action`);
      }
      p += m[0].length;
    }
    items.push({ kind: 'action', toks, line });
    pos = p;
  }
  return items;
}

/** Go interpreted string literal → string (strconv.Unquote subset). */
function unquoteGo(lit: string, name: string, line: number): string {
  const body = lit.slice(1, -1);
  return body.replace(/\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)/g, (_, e: string) => {
    const simple: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\', '"': '"' };
    if (e in simple) return simple[e] as string;
    if (/^[xuU]/.test(e)) return String.fromCodePoint(parseInt(e.slice(1), 16));
    if (/^[0-7]{3}$/.test(e)) return String.fromCharCode(parseInt(e, 8));
    throw new TemplateError('PARSE', name, line, `unknown escape sequence \\${e}`);
  });
}

/** Parses one file. `funcs` is the set of known function names (checked at parse time, like Go). */
export function parseTemplate(name: string, src: string, funcs: ReadonlySet<string>): ParsedTemplate {
  const items = lex(name, src);
  const defines = new Map<string, Node[]>();
  let i = 0;

  type End = { kw: 'end' | 'else' | 'eof'; rest: Tok[]; line: number };

  const err = (line: number, msg: string): TemplateError => new TemplateError('PARSE', name, line, msg);

  function parseList(): { nodes: Node[]; end: End } {
    const nodes: Node[] = [];
    while (i < items.length) {
      const it = items[i++] as Item;
      if (it.kind === 'text') {
        nodes.push({ kind: 'text', text: it.text });
        continue;
      }
      const first = it.toks[0];
      if (first === undefined) throw err(it.line, 'missing value for command');
      const kw = first.t === 'ident' && KEYWORDS.has(first.v) ? first.v : undefined;
      switch (kw) {
        case 'end':
          if (it.toks.length > 1) throw err(it.line, 'unexpected tokens after end');
          return { nodes, end: { kw: 'end', rest: [], line: it.line } };
        case 'else':
          return { nodes, end: { kw: 'else', rest: it.toks.slice(1), line: it.line } };
        case 'if':
        case 'with':
        case 'range':
          nodes.push(parseControl(kw, it.toks.slice(1), it.line));
          break;
        case 'define': {
          const nameTok = it.toks[1];
          if (nameTok?.t !== 'string' || it.toks.length !== 2) throw err(it.line, 'define needs exactly one string name');
          const body = parseList();
          if (body.end.kw !== 'end') throw err(it.line, `define "${nameTok.v}": missing end`);
          if (defines.has(nameTok.v)) throw err(it.line, `template: multiple definition of template "${nameTok.v}"`);
          defines.set(nameTok.v, body.nodes);
          break;
        }
        case 'template': {
          const nameTok = it.toks[1];
          if (nameTok?.t !== 'string') throw err(it.line, 'template needs a string name');
          const rest = it.toks.slice(2);
          nodes.push({ kind: 'template', name: nameTok.v, pipe: rest.length ? parsePipe(rest, it.line, false) : undefined, line: it.line });
          break;
        }
        case 'block':
        case 'break':
        case 'continue':
          throw new TemplateError('UNSUPPORTED', name, it.line, `{{${kw}}} is not supported by this renderer`);
        default:
          nodes.push({ kind: 'action', pipe: parsePipe(it.toks, it.line, true) });
      }
    }
    return { nodes, end: { kw: 'eof', rest: [], line: 0 } };
  }

  function parseControl(kw: 'if' | 'with' | 'range', toks: Tok[], line: number): Node {
    const pipe = parsePipe(toks, line, true, kw === 'range');
    const body = parseList();
    if (body.end.kw === 'eof') throw err(line, `unexpected EOF: {{${kw}}} without {{end}}`);
    let elseList: Node[] | undefined;
    if (body.end.kw === 'else') {
      const rest = body.end.rest;
      const chained = rest[0];
      if (chained === undefined) {
        const e = parseList();
        if (e.end.kw !== 'end') throw err(body.end.line, `expected {{end}} after {{else}}`);
        elseList = e.nodes;
      } else if (chained.t === 'ident' && (chained.v === 'if' || chained.v === 'with') && kw !== 'range') {
        // `else if` / `else with`: the nested control consumes the shared {{end}}.
        elseList = [parseControl(chained.v, rest.slice(1), body.end.line)];
      } else {
        throw err(body.end.line, 'unexpected tokens after else');
      }
    }
    return { kind: kw, pipe, list: body.nodes, elseList, line };
  }

  function parsePipe(toks: Tok[], line: number, allowDecl: boolean, allowTwoVars = false): Pipe {
    let k = 0;
    const decl: string[] = [];
    let assign = false;
    const t0 = toks[0];
    const t1 = toks[1];
    if (allowDecl && t0?.t === 'var') {
      if (t1?.t === ':=' || t1?.t === '=') {
        decl.push(t0.v);
        assign = t1.t === '=';
        k = 2;
      } else if (allowTwoVars && t1?.t === ',' && toks[2]?.t === 'var' && toks[3]?.t === ':=') {
        decl.push(t0.v, (toks[2] as { v: string }).v);
        k = 4;
      }
    }
    const { pipe, next } = parseCmds(toks, k, line, false);
    if (next !== toks.length) throw err(line, 'unexpected ")"');
    return { decl, assign, cmds: pipe, line };
  }

  function parseCmds(toks: Tok[], start: number, line: number, inParen: boolean): { pipe: Cmd[]; next: number } {
    const cmds: Cmd[] = [];
    let k = start;
    let args: Arg[] = [];
    for (;;) {
      const tok = toks[k];
      if (tok === undefined || tok.t === ')') {
        if (tok === undefined && inParen) throw err(line, 'unclosed left paren');
        if (tok?.t === ')' && !inParen) throw err(line, 'unexpected right paren');
        if (args.length === 0) throw err(line, cmds.length ? 'missing command after |' : 'missing value for command');
        cmds.push({ args });
        return { pipe: cmds, next: k };
      }
      if (tok.t === '|') {
        if (args.length === 0) throw err(line, 'missing command before |');
        cmds.push({ args });
        args = [];
        k++;
        continue;
      }
      const r = parseOperand(toks, k, line);
      args.push(r.arg);
      k = r.next;
    }
  }

  /** Adjacent `.x` fields from k; `startsOperand`: the first may follow a space (`.a.b` operand). */
  function chainAt(toks: Tok[], k: number, startsOperand = false): { chain: string[]; next: number } {
    const chain: string[] = [];
    const first = k;
    for (let t = toks[k]; t?.t === 'field' && ((startsOperand && k === first) || !t.sp); t = toks[k]) {
      chain.push(t.v);
      k++;
    }
    return { chain, next: k };
  }

  function parseOperand(toks: Tok[], k: number, line: number): { arg: Arg; next: number } {
    const tok = toks[k] as Tok;
    switch (tok.t) {
      case 'field': {
        const c = chainAt(toks, k, true);
        return { arg: { kind: 'field', chain: c.chain }, next: c.next };
      }
      case 'dot':
        return { arg: { kind: 'dot' }, next: k + 1 };
      case 'var': {
        const c = chainAt(toks, k + 1);
        return { arg: { kind: 'var', name: tok.v, chain: c.chain }, next: c.next };
      }
      case 'string':
        return { arg: { kind: 'string', value: tok.v }, next: k + 1 };
      case 'number':
        return { arg: { kind: 'number', value: tok.v, int: tok.int }, next: k + 1 };
      case 'ident':
        if (tok.v === 'true' || tok.v === 'false') return { arg: { kind: 'bool', value: tok.v === 'true' }, next: k + 1 };
        if (tok.v === 'nil') return { arg: { kind: 'nil' }, next: k + 1 };
        if (KEYWORDS.has(tok.v)) throw err(line, `unexpected keyword ${tok.v} in operand`);
        if (!funcs.has(tok.v)) throw err(line, `function "${tok.v}" not defined`);
        return { arg: { kind: 'ident', name: tok.v }, next: k + 1 };
      case '(': {
        const inner = parseCmds(toks, k + 1, line, true);
        const c = chainAt(toks, inner.next + 1);
        return { arg: { kind: 'pipe', pipe: { decl: [], assign: false, cmds: inner.pipe, line }, chain: c.chain }, next: c.next };
      }
      default:
        throw err(line, `unexpected "${tok.t}" in operand`);
    }
  }

  const top = parseList();
  if (top.end.kw !== 'eof') throw err(top.end.line, `unexpected {{${top.end.kw}}}`);
  return { name, root: top.nodes, defines };
}
