// npm's `prepare` step (run by `npm ci` and `npm install`): compile the TypeScript sources
// into dist/ so that `iris` starts without compiling them at every run. dist/ mirrors the
// repository (dist/src, dist/vision, ...), with the schema's SDL copied and assets/ and
// native/ linked, so paths the sources resolve next to themselves hold in both. Without typescript (an
// install without dev dependencies) it builds nothing and `iris` runs the sources via tsx.
import { execFileSync } from 'node:child_process';
import { cpSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const at = (path) => `${root}${path}`;
let tsc;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  console.log('iris: typescript is not installed, so dist/ is not built; the iris command will compile its sources at each run');
  process.exit(0);
}
rmSync(at('dist'), { recursive: true, force: true });
try {
  execFileSync(process.execPath, [tsc, '-p', at('tsconfig.build.json')], { cwd: root, stdio: 'inherit' });
} catch {
  // A type error must not fail `npm ci`: without dist/BUILT the CLI runs the sources.
  console.error('iris: tsc reported errors (above); dist/ is left unused and the iris command will compile its sources at each run');
  process.exit(0);
}
cpSync(at('schema/iris.graphql'), at('dist/schema/iris.graphql'));
symlinkSync('../assets', at('dist/assets'));
symlinkSync('../native', at('dist/native')); // native/malloc-trim.node, built by the install step
// bin/iris.js runs dist/ only while no source is newer than this file.
writeFileSync(at('dist/BUILT'), `${new Date().toISOString()}\n`);
