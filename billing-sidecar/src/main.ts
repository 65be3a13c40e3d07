import { createLogger, installGracefulShutdown, loadConfigOrExit } from '@tollgate/common';
import { startBillingSidecar } from './app.js';
import { loadBillingConfig } from './config.js';

const config = loadConfigOrExit('billing-sidecar', () => loadBillingConfig());
const logger = createLogger({ service: 'billing-sidecar', level: config.LOG_LEVEL });
try {
  const sidecar = await startBillingSidecar(config, logger);
  installGracefulShutdown(logger, [{ name: 'billing-sidecar', run: () => sidecar.stop() }]);
} catch (err) {
  logger.fatal({ err }, 'billing-sidecar failed to start');
  process.exit(1);
}
