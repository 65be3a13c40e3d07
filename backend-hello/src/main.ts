import { createLogger, installGracefulShutdown, loadConfigOrExit } from '@tollgate/common';
import { loadBackendConfig } from './config.js';
import { buildBackend } from './server.js';

const config = loadConfigOrExit('backend-hello', () => loadBackendConfig());
const logger = createLogger({ service: 'backend-hello', level: config.LOG_LEVEL });
const app = buildBackend(logger);
installGracefulShutdown(logger, [{ name: 'http', run: () => app.close() }]);
await app.listen({ host: config.BACKEND_HOST, port: config.BACKEND_PORT });
logger.info({ host: config.BACKEND_HOST, port: config.BACKEND_PORT }, 'backend-hello listening');
