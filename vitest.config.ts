import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // graphql ships CJS (main) and ESM (module) builds without an exports map: Node loads
    // the CJS one for graphql-yoga, Vite would give our sources the ESM one, and two
    // copies fail graphql's instanceof checks. Pin tests to the copy Node uses.
    alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }],
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Two cores: onnxruntime sessions are heavy, so files run in few workers.
    maxWorkers: 2,
  },
});
