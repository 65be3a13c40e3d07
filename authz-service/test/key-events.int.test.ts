import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { uniqueRedisPrefix } from '@tollgate/devstack';
import { connectRedis } from '../src/stores/redis-client.js';
import { KeyEventPublisher, keyEventsChannel, subscribeKeyEvents, type KeyEvent } from '../src/stores/key-events.js';
import { sleep } from './helpers.js';

const infra = inject('infra');
const clients: { disconnect(): void }[] = [];
afterAll(() => clients.forEach((c) => c.disconnect()));

describe('key events across replicas', () => {
  it('subscribes even when the service is too busy to connect within the command timeout', async () => {
    const channel = keyEventsChannel(uniqueRedisPrefix(infra, 'ev'));
    const subscriber = connectRedis({ url: infra.redisUrl, commandTimeoutMs: 20, name: 'test-subscriber', subscriber: true });
    clients.push(subscriber);
    const events: KeyEvent[] = [];
    const subscribed = subscribeKeyEvents(subscriber, channel, { onEvent: (e) => events.push(e), onResync: () => {} });
    // A service start keeps the event loop busy (module loading, migrations) past the timeout.
    const until = Date.now() + 150;
    while (Date.now() < until);
    await expect(subscribed).resolves.toBeUndefined();

    const publisher = new Redis(infra.redisUrl);
    clients.push(publisher);
    await new KeyEventPublisher(publisher, channel).keyChanged('key_revoked');
    for (let i = 0; i < 50 && events.length === 0; i++) await sleep(10);
    expect(events).toEqual([{ type: 'key_changed', keyId: 'key_revoked' }]);
  });
});
