import type { Logger } from 'pino';

export type ShutdownStep = { name: string; run: () => Promise<unknown> | unknown };

/**
 * Runs the steps in order on SIGTERM/SIGINT (stop accepting, drain, close stores), then exits.
 * A second signal, or a step that hangs past the deadline, forces the exit so an orchestrator
 * never waits forever.
 */
export function installGracefulShutdown(logger: Logger, steps: ShutdownStep[], deadlineMs = 10_000): () => Promise<void> {
  let shuttingDown: Promise<void> | undefined;
  const shutdown = (signal: string): Promise<void> => {
    if (shuttingDown) {
      logger.warn({ signal }, 'second signal during shutdown; exiting now');
      process.exit(1);
    }
    logger.info({ signal }, 'shutting down');
    const timer = setTimeout(() => {
      logger.error({ deadlineMs }, 'shutdown deadline passed; exiting');
      process.exit(1);
    }, deadlineMs);
    timer.unref();
    shuttingDown = (async () => {
      for (const step of steps) {
        try {
          await step.run();
        } catch (err) {
          logger.error({ err, step: step.name }, 'shutdown step failed');
        }
      }
      logger.info('stopped');
      logger.flush?.();
    })();
    return shuttingDown;
  };
  const handler = (signal: NodeJS.Signals) => {
    void shutdown(signal).then(() => process.exit(0));
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  return () => shutdown('manual');
}
