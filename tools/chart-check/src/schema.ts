import { Ajv, type ErrorObject } from 'ajv';
import { ValuesSchemaError, type ValuesIssue } from './errors.js';

function issue(e: ErrorObject): ValuesIssue {
  const path = e.instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .join('.');
  if (e.keyword === 'additionalProperties') {
    const extra = (e.params as { additionalProperty: string }).additionalProperty;
    return { path: path ? `${path}.${extra}` : extra, message: 'unknown key' };
  }
  if (e.keyword === 'enum') {
    return {
      path,
      message: `${e.message ?? 'must be one of'}: ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`,
    };
  }
  return { path, message: e.message ?? e.keyword };
}

/** Validates chart values against a values.schema.json (draft-07), like Helm does at install. */
export class ValuesValidator {
  private readonly validateFn;

  constructor(schema: Record<string, unknown>) {
    // strict: a typo in the schema itself (unknown keyword) is an error too.
    const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
    this.validateFn = ajv.compile(schema);
  }

  /** Every issue (empty when valid). Schema-combinator noise (anyOf/oneOf wrappers) is folded. */
  issues(values: unknown): ValuesIssue[] {
    if (this.validateFn(values)) return [];
    const seen = new Set<string>();
    const out: ValuesIssue[] = [];
    for (const e of this.validateFn.errors ?? []) {
      const i = issue(e);
      const key = `${i.path}\0${i.message}`;
      if (!seen.has(key)) {
        seen.add(key);
        out.push(i);
      }
    }
    return out;
  }

  /** Throws {@link ValuesSchemaError} naming every bad key. */
  validate(values: unknown, source: string): void {
    const issues = this.issues(values);
    if (issues.length > 0) throw new ValuesSchemaError(source, issues);
  }
}
