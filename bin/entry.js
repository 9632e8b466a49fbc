// Runs one of Iris's entry points (src/cli.ts, src/server.ts): the JavaScript `npm ci`
// compiled into dist/ (bin/build-dist.mjs) when it is up to date with the sources;
// otherwise (no dist/, a source edited since, or IRIS_TSX=1) registers tsx and runs the
// TypeScript, compiling it as it loads.
import { readdirSync, statSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const SOURCES = ['src', 'vision', 'text', 'fusion', 'schema'];

function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (/\.(ts|graphql)$/.test(entry.name)) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

function isDistFresh() {
  try {
    const built = statSync(`${root}dist/BUILT`).mtimeMs;
    return SOURCES.every((dir) => newestSource(`${root}${dir}`) <= built);
  } catch {
    return false;
  }
}

/** `name`: 'cli' or 'server'. The entry sees itself as the script being run (process.argv[1]). */
export async function runEntry(name) {
  if (process.env.IRIS_TSX !== '1' && isDistFresh()) {
    process.argv[1] = `${root}dist/src/${name}.js`;
  } else {
    const { register } = await import('tsx/esm/api');
    register();
    process.argv[1] = `${root}src/${name}.ts`;
  }
  await import(pathToFileURL(process.argv[1]).href);
}
