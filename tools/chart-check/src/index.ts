export { ChartCheckError, TemplateError, ValuesSchemaError, ManifestError, type TemplateErrorCode, type ValuesIssue } from './errors.js';
export { TemplateSet, FUNCTION_NAMES, goSprintf } from './template/exec.js';
export { GoInt, GoStruct, formatGoFloat, goQuote, goJson, goYaml, truth } from './template/values.js';
export {
  loadChart,
  coalesceValues,
  mergeValueFiles,
  renderChart,
  templateData,
  type Chart,
  type Manifest,
  type ReleaseOptions,
  type Rendered,
} from './chart.js';
export { ValuesValidator } from './schema.js';
export { valuesRefs, missingSegment, type ValuesRef } from './paths.js';
