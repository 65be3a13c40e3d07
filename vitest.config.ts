import { defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

// Workspace packages export their TypeScript sources under the `source` condition, so tests run
// the code as written, with no build step.
const conditions = ['source', ...defaultServerConditions];
const shared = { resolve: { conditions }, ssr: { resolve: { conditions } } };

export default defineConfig({
  ...shared,
  test: {
    // Integration files each start their own services and Envoy; two at a time suits 2 cores.
    maxWorkers: 2,
    minWorkers: 1,
    projects: [
      {
        ...shared,
        test: {
          name: 'unit',
          include: ['*/test/**/*.unit.test.ts'],
          environment: 'node',
        },
      },
      {
        ...shared,
        test: {
          name: 'integration',
          include: ['*/test/**/*.int.test.ts'],
          environment: 'node',
          globalSetup: ['devstack/src/vitest-global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
