/** Base class of every chart-check error. */
export class ChartCheckError extends Error {
  override name = 'ChartCheckError';
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
    super(
      `${source}: values don't meet the chart's schema:\n${issues.map((i) => `- ${i.path || '(root)'}: ${i.message}`).join('\n')}`,
    );
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

/** helm refused the chart or its values (lint finding, schema violation, template error). */
export class HelmError extends ChartCheckError {
  override name = 'HelmError';
  constructor(
    readonly args: readonly string[],
    readonly output: string,
  ) {
    super(`helm ${args.slice(0, 2).join(' ')} failed:\n${output}`);
  }
}
