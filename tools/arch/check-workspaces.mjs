// Checks the per-package TypeScript layout every workspace must follow (issue 10), so a package added
// or moved later cannot silently drop out of `npm run typecheck`:
//   - tsconfig.json is a solution file: { "files": [], "references": [build, spec] } (editors and vite use it);
//   - tsconfig.spec.json includes every one of src/, tests/, bench/ that exists (tsc over sources AND tests);
//   - package.json has a `typecheck` script (what `nx run-many -t typecheck` runs).
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const { root, packages } = createRequire(import.meta.url)('./workspaces.cjs');

// tsconfig files are JSONC: read them with TypeScript's own parser.
const ts = createRequire(import.meta.url)('typescript');
const readJsonc = (file) => {
  const { config, error } = ts.readConfigFile(file, ts.sys.readFile);
  if (error) throw new Error(`${file}: ${ts.flattenDiagnosticMessageText(error.messageText, '\n')}`);
  return config;
};

const problems = [];
for (const { dir } of packages) {
  const abs = join(root, dir);
  const fail = (msg) => problems.push(`${dir}: ${msg}`);
  const solution = join(abs, 'tsconfig.json');
  if (!existsSync(solution)) {
    fail('no tsconfig.json (a solution file referencing tsconfig.build.json and tsconfig.spec.json)');
  } else {
    const cfg = readJsonc(solution);
    const refs = (cfg.references ?? []).map((r) => r.path.replace(/^\.\//, ''));
    if (!Array.isArray(cfg.files) || cfg.files.length !== 0) fail('tsconfig.json must have "files": [] (solution file)');
    for (const want of ['tsconfig.build.json', 'tsconfig.spec.json']) {
      if (!refs.includes(want)) fail(`tsconfig.json does not reference ./${want}`);
      if (!existsSync(join(abs, want))) fail(`${want} is missing`);
    }
  }
  if (existsSync(join(abs, 'tsconfig.spec.json'))) {
    const include = readJsonc(join(abs, 'tsconfig.spec.json')).include ?? [];
    for (const sub of ['src', 'tests', 'bench']) {
      if (existsSync(join(abs, sub)) && !include.some((p) => p === sub || p.startsWith(`${sub}/`))) {
        fail(`tsconfig.spec.json does not include ${sub}/`);
      }
    }
  }
  const pkg = JSON.parse(readFileSync(join(abs, 'package.json'), 'utf8'));
  if (!pkg.scripts?.typecheck) fail('package.json has no "typecheck" script');
}
for (const p of problems) console.error(`workspace layout: ${p}`);
if (problems.length > 0) process.exit(1);
console.log(`workspace layout: ${packages.length} packages OK`);
