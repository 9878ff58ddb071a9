/** Base class of every chart-check error. */
export class ChartCheckError extends Error {
  override name = 'ChartCheckError';
}

/** Where a template problem is, as `file:line`. */
export interface TemplatePos {
  readonly template: string;
  readonly line: number;
}

/** Code is `PARSE` (bad or unsupported syntax), `EXEC` (failed while rendering) or `UNSUPPORTED`. */
export type TemplateErrorCode = 'PARSE' | 'EXEC' | 'UNSUPPORTED';

/** A template that cannot be parsed or rendered. Message is Go-like: `template: file:line: …`. */
export class TemplateError extends ChartCheckError {
  override name = 'TemplateError';
  constructor(
    readonly code: TemplateErrorCode,
    readonly template: string,
    readonly line: number,
    readonly detail: string,
  ) {
    super(`template: ${template}:${line}: ${detail}`);
  }
}

/** One schema violation: the values path (`encryption.wireguard.port`) and what is wrong. */
export interface ValuesIssue {
  readonly path: string;
  readonly message: string;
}

/** Values that do not satisfy values.schema.json; lists every issue. */
export class ValuesSchemaError extends ChartCheckError {
  override name = 'ValuesSchemaError';
  constructor(
    readonly source: string,
    readonly issues: readonly ValuesIssue[],
  ) {
    super(`${source}: values don't meet the chart's schema:\n${issues.map((i) => `- ${i.path || '(root)'}: ${i.message}`).join('\n')}`);
  }
}

/** A rendered manifest that is not valid YAML or lacks apiVersion/kind/metadata.name. */
export class ManifestError extends ChartCheckError {
  override name = 'ManifestError';
  constructor(
    readonly template: string,
    readonly detail: string,
  ) {
    super(`${template}: ${detail}`);
  }
}
