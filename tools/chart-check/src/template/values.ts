import { stringify as yamlStringify } from 'yaml';

/*
 * The data model and Go's printing rules. Helm reads values through sigs.k8s.io/yaml, i.e. JSON:
 * maps are map[string]interface{}, numbers float64, so `{{ .Values.port }}` prints with %v of a
 * float64 (1000000 → "1e+06", as Helm really does). Helm's built-in objects (.Release, .Chart)
 * are Go structs: a missing field is an error there, while a missing map key is just nil.
 */

/** A Go struct: field access is checked (missing field = error), unlike a map. */
export class GoStruct {
  constructor(
    readonly typeName: string,
    readonly fields: Readonly<Record<string, unknown>>,
  ) {}
}

/**
 * A Go `int`: integer constants in templates (`63`), `len` results and range indexes. Values
 * from values.yaml stay JS numbers = float64, so `eq .Values.port 51871` is an error, as in Helm.
 */
export class GoInt {
  constructor(readonly value: number) {}
}

/** Go type name of a value, for error messages. */
export function goTypeName(v: unknown): string {
  if (v === undefined || v === null) return '<nil>';
  if (v instanceof GoStruct) return v.typeName;
  if (v instanceof GoInt) return 'int';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number') return 'float64';
  if (typeof v === 'boolean') return 'bool';
  if (Array.isArray(v)) return '[]interface {}';
  if (typeof v === 'object') return 'map[string]interface {}';
  return typeof v;
}

/** reflect.Kind's name, as Sprig's kindOf/kindIs give it. */
export function goKindName(v: unknown): string {
  if (v === undefined || v === null) return 'invalid';
  if (v instanceof GoStruct) return 'struct';
  if (v instanceof GoInt) return 'int';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number') return 'float64';
  if (typeof v === 'boolean') return 'bool';
  if (Array.isArray(v)) return 'slice';
  if (typeof v === 'object') return 'map';
  return typeof v;
}

export function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof GoStruct) && !(v instanceof GoInt);
}

/** text/template's truth: false, 0, nil, and empty strings/slices/maps are false. */
export function truth(v: unknown): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0;
  if (v instanceof GoInt) return v.value !== 0;
  if (typeof v === 'string') return v.length > 0;
  if (Array.isArray(v)) return v.length > 0;
  if (v instanceof GoStruct) return true;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

/** Sprig's `empty`, used by `default`: same as !truth for the data model here. */
export function empty(v: unknown): boolean {
  return !truth(v);
}

/** strconv.FormatFloat(f, 'g', -1, 64), which is what %v prints for a float64. */
export function formatGoFloat(f: number): string {
  if (Number.isNaN(f)) return 'NaN';
  if (!Number.isFinite(f)) return f > 0 ? '+Inf' : '-Inf';
  if (f === 0) return Object.is(f, -0) ? '-0' : '0';
  const [mant, expStr] = f.toExponential().split('e') as [string, string];
  const exp = Number(expStr);
  // Shortest formatting decides with precision 6 (strconv's `if shortest { eprec = 6 }`).
  if (exp < -4 || exp >= 21 || exp >= 6) {
    const sign = exp < 0 ? '-' : '+';
    const abs = Math.abs(exp);
    return `${mant}e${sign}${abs < 10 ? '0' : ''}${abs}`;
  }
  return String(f);
}

/** fmt's %v, which text/template uses to print a value. Helm turns a nil's "<no value>" into "". */
export function printValue(v: unknown): string {
  if (v === undefined || v === null) return '';
  return formatV(v);
}

function formatV(v: unknown): string {
  if (v === undefined || v === null) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return formatGoFloat(v);
  if (v instanceof GoInt) return String(v.value);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (Array.isArray(v)) return `[${v.map(formatV).join(' ')}]`;
  if (v instanceof GoStruct) return `{${Object.values(v.fields).map(formatV).join(' ')}}`;
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `map[${Object.keys(o).sort().map((k) => `${k}:${formatV(o[k])}`).join(' ')}]`;
  }
  if (typeof v === 'bigint' || typeof v === 'symbol') return v.toString();
  return '<func>'; // parsed YAML holds no functions
}

/** Sprig's strval: strings as-is, everything else with %v. */
export function strval(v: unknown): string {
  return typeof v === 'string' ? v : formatV(v);
}

/** strconv.Quote (what %q prints): Go escapes, printable Unicode kept. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0) as number;
    switch (ch) {
      case '"': out += '\\"'; continue;
      case '\\': out += '\\\\'; continue;
      case '\x07': out += '\\a'; continue;
      case '\b': out += '\\b'; continue;
      case '\f': out += '\\f'; continue;
      case '\n': out += '\\n'; continue;
      case '\r': out += '\\r'; continue;
      case '\t': out += '\\t'; continue;
      case '\v': out += '\\v'; continue;
    }
    if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else if ((c >= 0x80 && c < 0xa0) || c === 0xad || c === 0x2028 || c === 0x2029 || c === 0xfeff) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return out + '"';
}

function sortKeys(v: unknown): unknown {
  if (v instanceof GoInt) return v.value;
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v instanceof GoStruct) return sortKeys({ ...v.fields });
  if (isMap(v)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) if (v[k] !== undefined) out[k] = sortKeys(v[k]);
    return out;
  }
  return v;
}

/** encoding/json.Marshal: sorted map keys, HTML-safe escapes (<, >, &, U+2028/9). */
export function goJson(v: unknown): string {
  const text = JSON.stringify(sortKeys(v === undefined ? null : v)) ?? 'null';
  return text.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${(c.codePointAt(0) as number).toString(16).padStart(4, '0')}`);
}

/**
 * Helm's toYaml: sigs.k8s.io/yaml.Marshal (JSON-ordered, i.e. sorted keys, block style,
 * sequences not indented under their key) with the final newline trimmed. Output is the same
 * YAML data as go-yaml's; quoting style of scalars can differ.
 */
export function goYaml(v: unknown): string {
  const data = sortKeys(v === undefined ? null : v);
  return yamlStringify(data, { indentSeq: false, lineWidth: 0, minContentWidth: 0, sortMapEntries: true }).replace(/\n$/, '');
}
