import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { startTestInfra, type TestInfra } from './test-infra.js';

declare module 'vitest' {
  export interface ProvidedContext {
    infra: TestInfra;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const { infra, stop } = await startTestInfra();
  project.provide('infra', infra);
  // Test files start Envoy through devstack, which looks for ENVOY_BIN first.
  process.env.ENVOY_BIN = infra.envoyBin;
  return stop;
}
