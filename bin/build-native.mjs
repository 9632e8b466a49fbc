// npm's `install` step of this package (run by `npm ci` and `npm install`): compile
// native/malloc-trim.c into native/malloc-trim.node with the machine's C compiler ($CC, else
// cc) and Node's own headers. Nothing here may fail the install: without a compiler, the
// headers or glibc (macOS, Alpine's musl), it says so and Iris runs without the addon
// (src/server/memory/malloc-trim.ts falls back, logging once).
import { execFileSync } from 'node:child_process';
import { existsSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const source = join(root, 'native/malloc-trim.c');
// `--out FILE` builds elsewhere (the test of this script); the install step builds in place.
const outAt = process.argv.indexOf('--out');
const target = outAt > 0 ? process.argv[outAt + 1] : join(root, 'native/malloc-trim.node');
const partial = `${target}.partial`;
const shown = target.startsWith(root) ? relative(root, target) : target;

/** Folders that may hold node_api.h: npm's nodedir, the running node's own prefix, Debian's. */
function headerDirs() {
  const nodedir = process.env.npm_config_nodedir;
  return [
    ...(nodedir ? [join(nodedir, 'include/node')] : []),
    join(dirname(process.execPath), '../include/node'),
    '/usr/local/include/node',
    '/usr/include/node',
  ];
}

function build() {
  if (process.platform !== 'linux') return `malloc_trim is glibc's (this is ${process.platform})`;
  const include = headerDirs().find((dir) => existsSync(join(dir, 'node_api.h')));
  if (!include) return `no Node headers (node_api.h) in ${headerDirs().join(', ')}`;
  const cc = process.env.CC || 'cc';
  try {
    execFileSync(cc, ['-O2', '-shared', '-fPIC', `-I${include}`, source, '-o', partial], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    rmSync(partial, { force: true });
    const stderr = error.stderr?.toString().trim().split('\n')[0];
    return error.code === 'ENOENT' ? `no C compiler (${cc})` : `${cc} failed${stderr ? `: ${stderr}` : ''}`;
  }
  renameSync(partial, target);
  try {
    if (typeof createRequire(import.meta.url)(target).trim !== 'function') throw new Error('it has no trim()');
  } catch (error) {
    rmSync(target, { force: true });
    return `the build does not load: ${error instanceof Error ? error.message.split('\n')[0] : error}`;
  }
  return undefined;
}

rmSync(target, { force: true });
const failure = build();
if (failure) {
  console.log(`iris: ${shown} not built (${failure}); Iris runs without it, but memory freed after a burst of large requests stays with the process instead of going back to the system`);
} else {
  console.log(`iris: built ${shown} (hands memory freed after a burst of large requests back to the system)`);
}
