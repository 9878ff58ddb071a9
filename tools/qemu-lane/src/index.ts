export { KernelLaneError, type KernelLaneErrorCode } from './errors.js';
export { DEFAULT_MODULES, runInVm, type RunInVmOptions, type VmResult } from './vm.js';
export { runVitestInVm, type RunVitestOptions, type VitestLaneResult } from './vitest.js';
export { findGuestKernel, type GuestKernel } from './host.js';
