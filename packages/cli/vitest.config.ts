import { defineConfig, mergeConfig } from 'vitest/config';
import base from '../../vitest.base.ts';

// Vite's oxc transform reads compilerOptions from a tsconfig.json, and packages here only have
// tsconfig.build.json: without this, the legacy (experimentalDecorators) parameter decorators
// inversify needs (`@inject(TOKEN)` on constructor parameters) fail to parse under vitest.
export default mergeConfig(
  base,
  defineConfig({
    oxc: { decorator: { legacy: true, emitDecoratorMetadata: false } },
  }),
);
