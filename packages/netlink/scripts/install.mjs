// npm `install` script of @veil/netlink: makes sure build/Release/veil_netlink.node loads.
//
// - In the Veil source tree (tsconfig.build.json present) it does nothing: the Nx `build` target
//   builds the addon (`npm run build:native`).
// - In an installed tarball the package ships the addon built for linux-x64 (N-API 8, so any
//   Node >= 20 loads it). When that binary loads here, nothing is built.
// - Otherwise (another architecture or libc), or with `npm install --build-from-source`
//   (npm_config_build_from_source=true) or VEIL_BUILD_FROM_SOURCE=1, it runs `node-gyp rebuild` from the shipped sources
//   (native/, binding.gyp): needs python3, make and a C++17 compiler, and node's headers, which
//   node-gyp finds beside a distribution's node (/usr/include/node) without the network.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const addon = join(root, 'build', 'Release', 'veil_netlink.node');
const say = (msg) => process.stderr.write(`@veil/netlink: ${msg}\n`);

if (existsSync(join(root, 'tsconfig.build.json'))) {
  say('source tree: the native addon is built by the build target');
  process.exit(0);
}

function loads() {
  try {
    createRequire(import.meta.url)(addon);
    return true;
  } catch (e) {
    say(`the shipped addon does not load here (${e.message.split('\n')[0]})`);
    return false;
  }
}

const fromSource = [process.env.npm_config_build_from_source, process.env.VEIL_BUILD_FROM_SOURCE].some((v) =>
  /^(true|1)$/.test(v ?? ''),
);
if (!fromSource && existsSync(addon) && loads()) process.exit(0);

say(fromSource ? 'building the addon from source (as asked)' : 'building the addon from source');
// npm tells scripts where its bundled node-gyp is; otherwise use one on PATH.
const gyp = process.env.npm_config_node_gyp;
const [cmd, args] = gyp ? [process.execPath, [gyp, 'rebuild']] : ['node-gyp', ['rebuild']];
const r = spawnSync(cmd, [...args, '--loglevel=warn'], { cwd: root, stdio: 'inherit' });
if (r.error) {
  say(`cannot run node-gyp: ${r.error.message}`);
  process.exit(1);
}
if (r.status !== 0) {
  say(`node-gyp rebuild failed (exit ${r.status}); it needs python3, make, a C++17 compiler and node's headers`);
  process.exit(r.status ?? 1);
}
