// Workspace discovery shared by the architecture rules (.dependency-cruiser.cjs) and, as a webpack-shaped
// `resolve` section, by dependency-cruiser's resolver: every workspace package's `exports` map becomes an
// alias onto its TypeScript source, so the graph is source-to-source (cycles across packages are visible,
// no build is needed) and new or moved packages are picked up from the root `workspaces` globs.
const { readFileSync, readdirSync, existsSync } = require('node:fs');
const { join } = require('node:path');

const root = join(__dirname, '..', '..');

/** @returns {{ name: string, dir: string, exports: Record<string, unknown> }[]} */
function workspaces() {
  const globs = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).workspaces ?? [];
  const dirs = globs.flatMap((g) => {
    if (!g.endsWith('/*')) return [g];
    const parent = g.slice(0, -2);
    if (!existsSync(join(root, parent))) return [];
    return readdirSync(join(root, parent), { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => `${parent}/${e.name}`);
  });
  return dirs
    .filter((dir) => existsSync(join(root, dir, 'package.json')))
    .map((dir) => {
      const pkg = JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8'));
      const exports = typeof pkg.exports === 'string' ? { '.': pkg.exports } : (pkg.exports ?? {});
      return { name: pkg.name, dir, exports };
    });
}

/** `./dist/fake/index.js` → `<dir>/src/fake/index.ts` (the build maps src/ onto dist/ one to one). */
function sourceOf(dir, target) {
  const file = typeof target === 'string' ? target : (target?.default ?? target?.import ?? target?.types);
  if (typeof file !== 'string') return undefined;
  const src = file.replace(/^\.\/dist\//, './src/').replace(/\.d\.ts$|\.js$/, '.ts');
  return existsSync(join(root, dir, src)) ? join(root, dir, src) : undefined;
}

const packages = workspaces();
const alias = {};
for (const p of packages) {
  for (const [subpath, target] of Object.entries(p.exports)) {
    const src = sourceOf(p.dir, target);
    if (src) alias[`${p.name}${subpath === '.' ? '' : subpath.slice(1)}$`] = src;
  }
}

module.exports = { root, packages, sourceOf, resolve: { alias } };
