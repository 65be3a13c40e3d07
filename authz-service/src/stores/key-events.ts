import type { RedisClient } from './redis-client.js';

/**
 * Cross-replica invalidation of cached keys. Every change to a key (update, revoke, rotate,
 * delete) publishes its id; every authz-service replica drops that key from its cache at once.
 * A subscriber that reconnects may have missed messages, so it clears its whole cache instead.
 */
export type KeyEvent =
  | { type: 'key_changed'; keyId: string }
  | { type: 'token_changed'; jti: string }
  | { type: 'provider_key_changed'; userId: string; provider: string }
  | { type: 'flush' };

export function keyEventsChannel(prefix: string): string {
  return `${prefix}key-events`;
}

export class KeyEventPublisher {
  constructor(
    private readonly redis: RedisClient,
    private readonly channel: string,
  ) {}

  async keyChanged(keyId: string): Promise<void> {
    await this.redis.publish(this.channel, JSON.stringify({ type: 'key_changed', keyId } satisfies KeyEvent));
  }

  async providerKeyChanged(userId: string, provider: string): Promise<void> {
    await this.redis.publish(this.channel, JSON.stringify({ type: 'provider_key_changed', userId, provider } satisfies KeyEvent));
  }

  async tokenChanged(jti: string): Promise<void> {
    await this.redis.publish(this.channel, JSON.stringify({ type: 'token_changed', jti } satisfies KeyEvent));
  }
}

export function subscribeKeyEvents(
  subscriber: RedisClient,
  channel: string,
  handlers: { onEvent: (e: KeyEvent) => void; onResync: () => void },
): Promise<void> {
  subscriber.on('message', (ch: string, message: string) => {
    if (ch !== channel) return;
    try {
      const event = JSON.parse(message) as KeyEvent;
      if (['key_changed', 'token_changed', 'provider_key_changed', 'flush'].includes(event.type)) handlers.onEvent(event);
    } catch {
      handlers.onResync();
    }
  });
  let first = true;
  subscriber.on('ready', () => {
    // ioredis re-subscribes on reconnect; what was published meanwhile is lost, so start clean.
    if (!first) handlers.onResync();
    first = false;
  });
  return subscriber.subscribe(channel).then(() => undefined);
}
