#!/usr/bin/env node
// The `veil` executable npm links (node_modules/.bin/veil, `npx veil`). It is committed, so
// `npm ci` can link it before anything is built; the CLI itself is dist/main.js.
import { existsSync } from 'node:fs';

const main = new URL('../dist/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('veil: the CLI is not built yet (dist/main.js is missing): run `npm run build` at the repository root\n');
  process.exit(1);
}
await import(main.href);
