import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration tests start real child processes and brokers; keep CI's 2 cores from thrashing.
    maxWorkers: process.env.CI ? 2 : 3,
    reporters: ['default'],
  },
});
