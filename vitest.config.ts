import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Two cores: onnxruntime sessions are heavy, so files run in few workers.
    maxWorkers: 2,
  },
});
