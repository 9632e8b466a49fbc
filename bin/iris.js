#!/usr/bin/env node
// The `iris` command. Runs the JavaScript that `npm ci` compiled into dist/ (bin/build-dist.mjs)
// when it is up to date with the sources; otherwise (no dist/, a source edited since, or
// IRIS_TSX=1) registers tsx and runs the TypeScript sources, compiling them as they load.
import { readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

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

if (process.env.IRIS_TSX !== '1' && isDistFresh()) {
  await import('../dist/src/cli.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli.ts');
}
