import { z } from 'zod';
import { env, loadConfig } from '@tollgate/common';

const schema = z.object({
  BACKEND_HOST: env.host(),
  BACKEND_PORT: env.port(8081),
  LOG_LEVEL: env.logLevel(),
});

export type BackendConfig = z.output<typeof schema>;

export function loadBackendConfig(source: NodeJS.ProcessEnv = process.env): BackendConfig {
  return loadConfig(schema, source);
}
