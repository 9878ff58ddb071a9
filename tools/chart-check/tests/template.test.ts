import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { formatGoFloat, goQuote, GoStruct, TemplateError, TemplateSet } from '../src/index.js';

const data = new GoStruct('chartutil.Values', {
  Values: {
    name: 'veil',
    empty: '',
    port: 51871,
    big: 1000000,
    on: true,
    off: false,
    list: ['a', 'b'],
    map: { z: 1, a: 'x<y' },
    nested: { deep: { v: 'ok' } },
    cidrs: ['10.0.0.0/8'],
  },
  Release: new GoStruct('chartutil.Release', { Name: 'rel', Namespace: 'ns', Service: 'Helm' }),
  Chart: new GoStruct('chart.Metadata', { Name: 'veil', Version: '0.1.0', AppVersion: '0.1.0' }),
});

function render(src: string, ...defs: string[]): string {
  const set = new TemplateSet();
  defs.forEach((d, i) => set.add(`_d${i}.tpl`, d));
  set.add('t', src);
  return set.render('t', data);
}

function renderError(src: string): TemplateError {
  try {
    render(src);
  } catch (e) {
    if (e instanceof TemplateError) return e;
    throw e;
  }
  throw new Error(`rendered without error: ${src}`);
}

describe('Go template syntax', () => {
  it('prints fields, variables and literals', () => {
    expect(render('{{ .Values.name }}/{{ .Release.Namespace }}/{{ $.Chart.Name }}/{{ "s" }}/{{ 3 }}/{{ true }}')).toBe('veil/ns/veil/s/3/true');
  });

  it('trims whitespace with {{- and -}} only (not {{-3}})', () => {
    expect(render('a  \n {{- .Values.name -}} \n\t b')).toBe('aveilb');
    expect(render('a {{ .Values.name }} b')).toBe('a veil b');
    expect(render('a {{-3}} b')).toBe('a -3 b');
  });

  it('drops comments, with trimming', () => {
    expect(render('x\n{{- /* note */ -}}\ny{{/* c */}}')).toBe('xy');
  });

  it('if / else if / else, with Go truthiness', () => {
    const t = '{{ if .Values.off }}1{{ else if .Values.empty }}2{{ else if .Values.list }}3{{ else }}4{{ end }}';
    expect(render(t)).toBe('3');
    expect(render('{{ if .Values.missing }}y{{ else }}n{{ end }}{{ if 0 }}y{{ else }}n{{ end }}{{ if .Values.map }}y{{ end }}')).toBe('nny');
  });

  it('with rebinds dot and has an else', () => {
    expect(render('{{ with .Values.nested.deep }}{{ .v }}{{ end }}|{{ with .Values.empty }}x{{ else }}none{{ end }}')).toBe('ok|none');
  });

  it('range over lists and maps (sorted keys), with variables and else', () => {
    expect(render('{{ range .Values.list }}[{{ . }}]{{ end }}')).toBe('[a][b]');
    expect(render('{{ range $i, $v := .Values.list }}{{ $i }}={{ $v }} {{ end }}')).toBe('0=a 1=b ');
    expect(render('{{ range $k, $v := .Values.map }}{{ $k }}:{{ $v }},{{ end }}')).toBe('a:x<y,z:1,');
    expect(render('{{ range .Values.missing }}x{{ else }}empty{{ end }}')).toBe('empty');
    expect(render('{{ range .Values.list }}{{ $.Release.Name }}{{ end }}')).toBe('relrel');
  });

  it('variables: declare, assign, scope ends with the block', () => {
    expect(render('{{ $x := "a" }}{{ if true }}{{ $x = "b" }}{{ $y := 1 }}{{ end }}{{ $x }}')).toBe('b');
    expect(renderError('{{ if true }}{{ $y := 1 }}{{ end }}{{ $y }}').message).toContain('undefined variable "$y"');
  });

  it('define / include / template, pipelines and parenthesized calls', () => {
    const defs = '{{- define "n" -}}{{ .Chart.Name }}-{{ .Release.Name }}{{- end -}}{{ define "v" }}[{{ . }}]{{ end }}';
    expect(render('{{ include "n" . }}|{{ template "v" .Values.name }}|{{ include "n" . | trunc 4 | quote }}', defs)).toBe('veil-rel|[veil]|"veil"');
    expect(render('{{ default (include "n" .) .Values.empty }}', defs)).toBe('veil-rel');
    expect(render('{{ (printf "%s-%s" "a" "b") }}|{{ (.Values.nested).deep.v }}')).toBe('a-b|ok');
  });

  it('and/or return an operand and short-circuit (Go 1.18+)', () => {
    expect(render('{{ and .Values.on .Values.name }}|{{ or .Values.empty .Values.off }}|{{ or .Values.empty "d" }}')).toBe('veil|false|d');
    // The right side would fail (nil pointer) if evaluated.
    expect(render('{{ and .Values.off .Values.missing.x }}|{{ or .Values.on .Values.missing.x }}')).toBe('false|true');
  });

  it('eq / ne / not', () => {
    expect(render('{{ eq .Values.name "veil" }} {{ eq .Values.name "a" "veil" }} {{ ne .Values.port 1.0 }} {{ not .Values.on }}')).toBe('true true true false');
    expect(renderError('{{ eq .Values.name 1 }}').message).toContain('incompatible types for comparison');
  });

  it('keeps Go int constants apart from float64 values, like Helm', () => {
    // Values arrive as float64; `51871` in a template is an int: Go refuses to compare them.
    expect(renderError('{{ eq .Values.port 51871 }}').message).toContain('incompatible types for comparison');
    expect(render('{{ eq .Values.port 51871.0 }} {{ eq 2 (len .Values.list) }} {{ len "é" }}')).toBe('true true 2');
    expect(renderError('{{ trunc .Values.port "abc" }}').message).toContain('expected int; got float64');
    expect(render('{{ printf "%d|%d|%v" 7 .Values.port 1e3 }}')).toBe('7|%!d(float64=51871)|1000');
    expect(render('{{ printf "%s|%s|%v" .Values.name 3 .Values.missing }}')).toBe('veil|%!s(int=3)|<nil>');
  });
});

describe('Sprig / Helm functions', () => {
  it('default treats empty values (including false) as unset', () => {
    expect(render('{{ default "d" .Values.empty }} {{ default "d" .Values.missing }} {{ default "d" .Values.name }} {{ default "d" .Values.off }}')).toBe('d d veil d');
  });

  it('quote uses Go %q escaping, skips nil, and formats numbers with %v', () => {
    expect(render('{{ quote "a\\"b\\n" }}|{{ .Values.port | quote }}|{{ quote .Values.missing }}|{{ quote .Values.on }}')).toBe('"a\\"b\\n"|"51871"||"true"');
    expect(goQuote('tab\t é \u0001')).toBe('"tab\\t é \\x01"');
  });

  it('toYaml, toJson, indent, nindent', () => {
    expect(render('{{ toYaml .Values.map }}')).toBe('a: x<y\nz: 1');
    expect(render('{{ toYaml .Values.list }}')).toBe('- a\n- b');
    expect(render('{{ toYaml .Values.nested | nindent 2 }}')).toBe('\n  deep:\n    v: ok');
    expect(render('{{ toJson .Values.map }}')).toBe('{"a":"x\\u003cy","z":1}');
    expect(render('{{ toJson .Values.cidrs }}')).toBe('["10.0.0.0/8"]');
    expect(render('{{ "a\\nb" | indent 3 }}')).toBe('   a\n   b');
  });

  it('b64enc, sha256sum, printf, trunc, trimSuffix, join, dir, base', () => {
    expect(render('{{ b64enc "veil" }}')).toBe(Buffer.from('veil').toString('base64'));
    expect(render('{{ sha256sum "veil" }}')).toBe(createHash('sha256').update('veil').digest('hex'));
    expect(render('{{ printf "%s:%d:%v:%q:%t%%" "a" 5 .Values.port "q" true }}')).toBe('a:5:51871:"q":true%');
    expect(render('{{ trunc 3 "abcdef" }} {{ trunc -2 "abcdef" }} {{ trunc 10 "ab" }}')).toBe('abc ef ab');
    expect(render('{{ trimSuffix "-" "abc-" }} {{ trimSuffix "-" "abc" }}')).toBe('abc abc');
    expect(render('{{ join ", " .Values.list }}')).toBe('a, b');
    expect(render('{{ dir "/etc/veil/ipsec/keys" }} {{ base "/etc/veil/ipsec/keys" }} {{ dir "keys" }}')).toBe('/etc/veil/ipsec keys .');
  });

  it('required fails with its message on nil or empty string', () => {
    expect(render('{{ required "need name" .Values.name }}')).toBe('veil');
    const e = renderError('{{ required "encryption.type is required" .Values.empty }}');
    expect(e.code).toBe('EXEC');
    expect(e.message).toContain('encryption.type is required');
  });

  it('prints float64 values the way Helm does (1000000 → 1e+06)', () => {
    expect(render('{{ .Values.big }} {{ .Values.port }}')).toBe('1e+06 51871');
    expect(formatGoFloat(123456)).toBe('123456');
    expect(formatGoFloat(1234567)).toBe('1.234567e+06');
    expect(formatGoFloat(0.5)).toBe('0.5');
    expect(formatGoFloat(0.00001)).toBe('1e-05');
  });

  it('prints maps and lists with %v, missing keys as empty', () => {
    expect(render('{{ .Values.list }} {{ .Values.map }} [{{ .Values.missing }}]')).toBe('[a b] map[a:x<y z:1] []');
  });
});

describe('errors instead of silent output', () => {
  it.each([
    ['{{ .Values.missing.x }}', 'nil pointer evaluating interface {}.x'],
    ['{{ .Release.Nope }}', "can't evaluate field Nope in type chartutil.Release"],
    ['{{ .Values.name.x }}', "can't evaluate field x in type string"],
    ['{{ include "nope" . }}', 'no template "nope"'],
    ['{{ .Values.name | .Values.name }}', "can't give argument to non-function"],
    ['{{ trunc "3" "abc" }}', 'expected int'],
    ['{{ b64enc 3 }}', 'expected string'],
    ['{{ nindent 2 }}', 'wrong number of args for nindent'],
    ['{{ printf "%x" 3 }}', 'verb %x is not supported'],
    ['{{ range 3 }}x{{ end }}', "range can't iterate over 3"],
  ])('%s → %s', (src, message) => {
    expect(renderError(src).message).toContain(message);
  });

  it.each([
    ['{{ upper "x" }}', 'function "upper" not defined', 'PARSE'],
    ['{{ tpl "x" . }}', 'function "tpl" not defined', 'PARSE'],
    ['{{ block "b" . }}x{{ end }}', 'not supported', 'UNSUPPORTED'],
    ['{{ range .Values.list }}{{ break }}{{ end }}', 'not supported', 'UNSUPPORTED'],
    ["{{ 'a' }}", 'character constants', 'UNSUPPORTED'],
    ['{{ if true }}x', 'without {{end}}', 'PARSE'],
    ['{{ end }}', 'unexpected {{end}}', 'PARSE'],
    ['{{ .Values.name', 'unclosed action', 'PARSE'],
    ['{{ (printf "x" }}', 'unclosed left paren', 'PARSE'],
    ['{{ /* not a comment: space first */ }}', 'unexpected "/"', 'PARSE'],
    ['{{/* c */  -}}', 'comment ends before closing delimiter', 'PARSE'],
  ])('parse: %s → %s', (src, message, code) => {
    const e = renderError(src);
    expect(e.message).toContain(message);
    expect(e.code).toBe(code);
  });

  it('names the file and line', () => {
    const e = renderError('a\nb\n{{ .Values.missing.x }}');
    expect(e.template).toBe('t');
    expect(e.line).toBe(3);
    expect(e.message).toMatch(/^template: t:3: /);
  });
});
