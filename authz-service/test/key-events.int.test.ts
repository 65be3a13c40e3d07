import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { TestStack, uniqueRedisPrefix } from '@tollgate/devstack';
import { connectRedis } from '../src/stores/redis-client.js';
import { KeyEventFeed, KeyEventPublisher, keyEventsChannel, type KeyEvent } from '../src/stores/key-events.js';
import { issueServiceToken, revokeServiceToken } from '../src/tokens/token-service.js';
import { createKey, httpStatusOf, sleep, stackAuthz, stackCheck, stackEnv, type CheckFn, type TestAuthz } from './helpers.js';
import { startTcpProxy, viaProxy, type TcpProxy } from './tcp-proxy.js';

// The revocation guarantee (docs/authz.md): a change reaches every replica within one second
// even when its pub/sub message is lost, and a replica that cannot reload a changed key refuses
// it rather than serve the old answer. Two replicas over one real Redis and Postgres; each
// fault is made for one replica only, by a TCP proxy between it and the server.
const infra = inject('infra');
const SECRET = 'k1:' + 's'.repeat(40);
const ROUTES = JSON.stringify([{ prefix: '/proj/', project: 'proj', services: ['api'] }]);
let a: TestAuthz;
let b: TestAuthz;
let checkA: CheckFn;
let checkB: CheckFn;
let redisA: TcpProxy;
let redisB: TcpProxy;
let postgresB: TcpProxy;
let probe: Redis;
const stack = new TestStack();

beforeAll(async () => {
  const env = await stackEnv(stack, infra, 'revocation');
  const redis = new URL(infra.redisUrl);
  const pg = new URL(env.databaseUrl);
  const proxy = (name: string, to: URL) =>
    stack.start(
      `TCP proxy to ${name}`,
      () => startTcpProxy({ host: to.hostname, port: Number(to.port) }),
      (p) => p.close(),
    );
  redisA = await proxy('Redis', redis);
  redisB = await proxy('Redis', redis);
  postgresB = await proxy('Postgres', pg);
  // A long cache TTL, so only the invalidation path can explain a change being seen; a short
  // command timeout, so a publish to an unreachable Redis fails at once.
  const overrides = { KEY_CACHE_TTL_MS: '600000', GATEWAY_JWT_SECRET: SECRET, SERVICE_TOKEN_ROUTES: ROUTES, REDIS_COMMAND_TIMEOUT_MS: '200' };
  a = await stackAuthz(stack, { ...env, redisUrl: viaProxy(infra.redisUrl, redisA) }, overrides);
  b = await stackAuthz(stack, { ...env, redisUrl: viaProxy(infra.redisUrl, redisB), databaseUrl: viaProxy(env.databaseUrl, postgresB) }, overrides);
  checkA = stackCheck(stack, a);
  checkB = stackCheck(stack, b);
  probe = new Redis(infra.redisUrl);
  stack.defer('Redis probe', () => probe.disconnect());
}, 60_000);

afterAll(() => stack.stop());

const bearer = (k: string, path = '/hello') => ({ path, headers: { authorization: `Bearer ${k}` } });

/** Milliseconds until `check` answers `status`, polling; Infinity if not within `limitMs`. */
async function msUntil(check: CheckFn, call: ReturnType<typeof bearer>, status: number, limitMs = 1000): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < limitMs) {
    if (httpStatusOf(await check(call)) === status) return Date.now() - start;
    await sleep(10);
  }
  return Infinity;
}

async function warmKey() {
  // After a test that cut a connection: a's Redis is back and b's subscriber is subscribed again.
  for (let i = 0; i < 100; i++) {
    const up = await a.deps.redis.ping().then(
      () => true,
      () => false,
    );
    if (up && redisB.subscriberUpstreamPorts().length > 0) break;
    await sleep(20);
  }
  await sleep(200);
  const created = await createKey(a);
  expect(httpStatusOf(await checkA(bearer(created.plaintext)))).toBe(200);
  expect(httpStatusOf(await checkB(bearer(created.plaintext)))).toBe(200);
  return created;
}

describe('key event feed', () => {
  it('subscribes even when the service is too busy to connect within the command timeout', async () => {
    const channel = keyEventsChannel(uniqueRedisPrefix(infra, 'ev'));
    const subscriber = connectRedis({ url: infra.redisUrl, commandTimeoutMs: 20, name: 'test-subscriber', subscriber: true });
    const redis = new Redis(infra.redisUrl);
    const events: KeyEvent[] = [];
    const feed = new KeyEventFeed({ subscriber, redis, channel, pollMs: 250, handlers: { onEvent: (e) => events.push(e), onResync: () => {} } });
    stack.defer('key event feed', async () => {
      await feed.stop();
      subscriber.disconnect();
      redis.disconnect();
    });
    const started = feed.start();
    // A service start keeps the event loop busy (module loading, migrations) past the timeout.
    const until = Date.now() + 150;
    while (Date.now() < until);
    await expect(started).resolves.toBeUndefined();
    await new KeyEventPublisher(probe, channel).keyChanged('key_revoked');
    for (let i = 0; i < 50 && events.length === 0; i++) await sleep(10);
    // Pub/sub's message, in the format it always had (the poll may apply it again, harmlessly).
    expect(events[0]).toEqual({ type: 'key_changed', keyId: 'key_revoked' });
  });
});

describe('revocation when pub/sub fails', () => {
  it('a publish that Redis refused is retried, and the revocation lands within a second of Redis coming back', async () => {
    const { key, plaintext } = await warmKey();
    redisA.setRefusing(true); // replica a (the one making the change) loses Redis
    try {
      await a.deps.keyStore.revoke(key.id, 'admin', 'test');
      // The change is committed; its publish fails. Callers may not catch: it must not throw.
      await expect(a.deps.keyEvents.keyChanged(key.id)).resolves.toBeUndefined();
      expect(a.deps.keyEvents.pending).toBe(1);
      await sleep(300);
      expect(httpStatusOf(await checkB(bearer(plaintext)))).toBe(200); // nothing reached b yet
    } finally {
      redisA.setRefusing(false);
    }
    // a reconnects (retry strategy: 100 ms and up) and its retry publishes.
    expect(await msUntil(checkB, bearer(plaintext), 401, 3000)).toBeLessThan(3000);
    expect(a.deps.keyEvents.pending).toBe(0);
  });

  it('dropping the subscriber connection while revoking: refused within one second', async () => {
    const { key, plaintext } = await warmKey();
    const ports = redisB.subscriberUpstreamPorts();
    expect(ports.length).toBeGreaterThan(0);
    for (const port of ports) await probe.client('KILL', 'ADDR', `127.0.0.1:${port}`);
    await a.deps.keyStore.revoke(key.id, 'admin', 'test');
    await a.deps.keyEvents.keyChanged(key.id);
    expect(await msUntil(checkB, bearer(plaintext), 401)).toBeLessThan(1000);
  });

  it('a key revocation whose pub/sub message is lost reaches the replica within one second', async () => {
    const { key, plaintext } = await warmKey();
    redisB.swallowPubSub = true; // from here on, b's subscriber connection stays up and hears nothing
    await a.deps.keyStore.revoke(key.id, 'admin', 'test');
    await a.deps.keyEvents.keyChanged(key.id);
    expect(await msUntil(checkA, bearer(plaintext), 401)).toBeLessThan(1000);
    expect(await msUntil(checkB, bearer(plaintext), 401)).toBeLessThan(1000);
  });

  it('a service-token revocation whose pub/sub message is lost reaches the replica within one second', async () => {
    expect(redisB.swallowPubSub).toBe(true);
    const { token, record } = await issueServiceToken(a.deps, { project: 'proj', service: 'api', description: null, expiresInDays: 1, createdBy: 'admin' });
    const call = bearer(token, '/proj/x');
    expect(httpStatusOf(await checkA(call))).toBe(200);
    expect(httpStatusOf(await checkB(call))).toBe(200);
    await revokeServiceToken(a.deps, record.jti, 'admin', 'test');
    expect(await msUntil(checkB, call, 401)).toBeLessThan(1000);
  });

  it("a revocation during the replica's Postgres outage: refused (503), never the old answer", async () => {
    expect(redisB.swallowPubSub).toBe(true);
    const { key, plaintext } = await warmKey();
    postgresB.setRefusing(true); // b's database is gone; a's is fine
    try {
      expect(httpStatusOf(await checkB(bearer(plaintext)))).toBe(200); // warm: no Postgres needed
      await a.deps.keyStore.revoke(key.id, 'admin', 'test');
      await a.deps.keyEvents.keyChanged(key.id);
      expect(await msUntil(checkB, bearer(plaintext), 503)).toBeLessThan(1000);
      await sleep(200);
      expect(httpStatusOf(await checkB(bearer(plaintext)))).toBe(503); // and it stays refused
    } finally {
      postgresB.setRefusing(false);
    }
    expect(await msUntil(checkB, bearer(plaintext), 401, 5000)).toBeLessThan(5000);
  });
});
