export { ChartCheckError, HelmError, ValuesSchemaError, ManifestError, type ValuesIssue } from './errors.js';
export { loadChart, coalesceValues, mergeValueFiles, isMap, type Chart } from './chart.js';
export {
  helmBinary,
  helmLint,
  parseManifests,
  renderChart,
  type Manifest,
  type ReleaseOptions,
  type RenderOptions,
  type Rendered,
} from './helm.js';
export { ValuesValidator } from './schema.js';
export { valuesRefs, missingSegment, type ValuesRef } from './paths.js';
