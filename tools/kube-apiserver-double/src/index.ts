export {
  KubeApiServerDouble,
  type KubeApiServerDoubleOptions,
  type KubeObject,
  type ResourceName,
  type WatchEventType,
} from './server.js';
export { mergePatch, jsonPatch, PatchError, type Json } from './patch.js';
