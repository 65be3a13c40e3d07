import type { Logger } from '@tollgate/common';
import type { AuthzConfig } from '../config.js';
import { createRedis } from '../deps.js';
import { KeyEventFeed, keyEventsChannel, type KeyEventHandlers } from '../stores/key-events.js';

/**
 * The key-event feed over two Redis connections of its own: a subscriber (in subscribe mode it
 * can send nothing else) and one for the poll. `close` stops the feed and drops both.
 */
export function createKeyEventFeed(config: AuthzConfig, logger: Logger, handlers: KeyEventHandlers): { feed: KeyEventFeed; close(): void } {
  const subscriber = createRedis(config, 'subscriber');
  subscriber.on('error', (err) => logger.warn({ err: err.message }, 'redis subscriber error'));
  const eventsRedis = createRedis(config, 'events');
  eventsRedis.on('error', (err) => logger.debug({ err: err.message }, 'redis events connection error'));
  const feed = new KeyEventFeed({
    subscriber,
    redis: eventsRedis,
    channel: keyEventsChannel(config.REDIS_KEY_PREFIX),
    pollMs: config.KEY_EVENTS_POLL_MS,
    logger,
    handlers,
  });
  return {
    feed,
    close() {
      feed.stop();
      subscriber.disconnect();
      eventsRedis.disconnect();
    },
  };
}
