// libbpf-ts public API. See README.md for the contract.
export {
  type Codec,
  type CodecValue,
  type CodecInput,
  type StructFields,
  u8,
  u16,
  u32,
  u64,
  i8,
  i16,
  i32,
  i64,
  be16,
  be32,
  bool,
  bytes,
  array,
  struct,
} from './codec.js';
export { type LpmKey, lpmKey } from './lpm.js';
export { SkBuff, type SkBuffFields, type SkBuffInput } from './skbuff.js';
export { ObjectSpec, type MapSpec, type VarSpec } from './spec.js';
export { BpfObject, type ProgramSpec } from './object.js';
export { BpfMap, type MapInfo, type MapShape, type MapType, type UpdateFlag, numPossibleCpus } from './map.js';
export { Program, type ProgramType, type RunOptions, type RunResult } from './program.js';
export {
  attachTc,
  queryTc,
  listTc,
  ifNameToIndex,
  type TcAttachOptions,
  type TcFilterInfo,
  type TcDirection,
  type TcLink,
  type TcQueryOptions,
} from './tc.js';
export { mountBpffs, unmountBpffs } from './bpffs.js';
export {
  LibbpfError,
  BpfError,
  NotSupportedError,
  VerifierError,
  ClosedError,
  NotFoundError,
  CodecSizeError,
  ArgumentError,
  errnoCode,
} from './errors.js';
