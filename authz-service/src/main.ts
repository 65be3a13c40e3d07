import { createLogger, installGracefulShutdown, loadConfigOrExit } from '@tollgate/common';
import { loadAuthzConfig } from './config.js';
import { startAuthzService } from './app.js';

const config = loadConfigOrExit('authz-service', () => loadAuthzConfig());
const logger = createLogger({ service: 'authz-service', level: config.LOG_LEVEL });
if (config.RATE_LIMIT_FAILURE_MODE === 'open') {
  logger.info('rate limits fail open when Redis is unreachable (RATE_LIMIT_FAILURE_MODE=open)');
}
try {
  const service = await startAuthzService(config, logger);
  installGracefulShutdown(logger, [{ name: 'authz-service', run: () => service.stop() }]);
} catch (err) {
  logger.fatal({ err: (err as Error).message }, 'authz-service failed to start');
  process.exit(1);
}
