import { defineConfig, mergeConfig } from 'vitest/config';
import base from '../../vitest.base.ts';

// Packing and installing the tarballs once (tests/global-setup.ts) serves every suite.
export default mergeConfig(base, defineConfig({ test: { globalSetup: ['./tests/global-setup.ts'] } }));
