// Architecture rules as code (issue 10). Run with `npm run arch`.
// Packages come from tools/arch/workspaces.cjs (the root `workspaces` globs), so rules name packages, not file lists.
const { root, packages, sourceOf } = require('./tools/arch/workspaces.cjs');

const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** A regex matching a package by name, resolved (its directory) or not (its bare name). */
function pkgPath(...names) {
  const alts = names.flatMap((n) => {
    const p = packages.find((q) => q.name === n);
    return [`^${esc(n)}(/|$)`, ...(p ? [`^${esc(p.dir)}/`] : [])];
  });
  return alts.join('|');
}
/** Entry files a package declares in its exports map: the only way in from another package. */
function entryFiles(name) {
  const p = packages.find((q) => q.name === name);
  if (!p) return [];
  return Object.values(p.exports)
    .map((t) => sourceOf(p.dir, t))
    .filter(Boolean)
    .map((abs) => `^${esc(abs.slice(root.length + 1))}$`);
}

// Every workspace directory as one alternation, captured so `$1` can name "the same package".
const anyPackage = `^(${packages.map((p) => esc(p.dir)).join('|')})/`;
const kernelPackages = ['libbpf-ts', '@veil/netlink', '@veil/bpf', 'node-xfrm-bindings', '@veil/node-xfrm-bindings'];
const devTools = ['@veil/kube-apiserver-double', '@veil/qemu-lane', '@veil/test-utils', '@veil/lab'];

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Import cycles make load order fragile and modules impossible to reason about one at a time.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'agent-core-no-kernel',
      severity: 'error',
      comment:
        'agent-core holds interfaces, DI tokens, reconciler, config and observability; kernel access lives in ' +
        'the datapath and backend packages (issue 10).',
      from: { path: '^packages/agent-core/' },
      to: { path: pkgPath(...kernelPackages) },
    },
    {
      name: 'cli-no-dev-tools',
      severity: 'error',
      comment: 'The production CLI (and the image) must not depend on test doubles, the qemu lane or the lab.',
      from: { path: '^packages/cli/src/' },
      to: { path: `${pkgPath(...devTools)}|^tools/` },
    },
    {
      name: 'backend-agent-core-public-entry',
      severity: 'error',
      comment: 'A backend uses @veil/agent-core only through the entries of its exports map, never its dist/ or src/ internals.',
      from: { path: '^packages/backend-[^/]+/' },
      to: { path: pkgPath('@veil/agent-core'), pathNot: entryFiles('@veil/agent-core') },
    },
    {
      name: 'no-relative-cross-package',
      severity: 'error',
      comment: 'Another package is reached through its name (and so its exports map), not a relative path into its files.',
      from: { path: anyPackage },
      to: { dependencyTypes: ['local'], path: anyPackage, pathNot: '^$1/' },
    },
    {
      name: 'src-not-from-tests-or-bench',
      severity: 'error',
      comment: 'Shipped code must not import test or benchmark code.',
      from: { path: `${anyPackage}src/` },
      to: { path: `${anyPackage}(tests|bench)/` },
    },
    {
      name: 'netlink-no-wireguard',
      severity: 'error',
      comment:
        '@veil/netlink is generic netlink only; WireGuard (genetlink codec, Key) lives in backend-wireguard, ' +
        'the wgctrl-go way (issue 10).',
      from: { path: '^packages/netlink/' },
      to: { path: ['(^|/)wireguard[^/]*$', pkgPath('@veil/backend-wireguard')] },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'An import that cannot be resolved is a broken build waiting to happen (or a missing dependency).',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    // Anchored on paths inside a workspace, so a deep import such as `@veil/agent-core/dist/x.js` is still
    // seen (and refused) rather than dropped as if it were build output.
    exclude: { path: ['(^|/)node_modules/', `${anyPackage}(dist|dist-bench|build|obj|test-results|coverage)/`] },
    doNotFollow: { path: 'node_modules' },
    // Type-only imports count: a type cycle still couples modules, and the kernel/dev-tool rules are about
    // what a package knows of, not only what it loads.
    tsPreCompilationDeps: true,
    webpackConfig: { fileName: 'tools/arch/workspaces.cjs' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
      extensions: ['.ts', '.d.ts', '.js', '.mjs', '.cjs', '.json'],
    },
    // The sources use NodeNext specifiers (`./x.js` for `./x.ts`).
    tsConfig: { fileName: 'tsconfig.base.json' },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
