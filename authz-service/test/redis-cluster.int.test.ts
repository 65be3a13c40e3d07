import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort, startRedisCluster, TestStack, type RunningRedisCluster } from '@tollgate/devstack';
import { createKey, httpStatusOf, sleep, stackAuthz, stackCheck, stackEnv, type CheckFn, type TestAuthz, type TestEnv } from './helpers.js';

// Rate limits and revocation against a real three-master Redis Cluster.
const infra = inject('infra');
let cluster: RunningRedisCluster;
let env: TestEnv;
let a: TestAuthz;
let b: TestAuthz;
let checkA: CheckFn;
let checkB: CheckFn;
const stack = new TestStack();

beforeAll(async () => {
  cluster = await stack.start(
    'Redis Cluster',
    async () => startRedisCluster({ dir: stack.tempDir('tollgate-cluster-'), ports: [await freePort(), await freePort(), await freePort()] }),
    (c) => c.stop(),
  );
  env = await stackEnv(stack, infra, 'cluster');
  const nodes = cluster.seeds.map((s) => `${s.host}:${s.port}`).join(',');
  const overrides = { REDIS_URL: `redis://${cluster.seeds[0]!.host}:${cluster.seeds[0]!.port}`, REDIS_CLUSTER_NODES: nodes, KEY_CACHE_TTL_MS: '600000' };
  a = await stackAuthz(stack, env, overrides);
  b = await stackAuthz(stack, env, overrides);
  checkA = stackCheck(stack, a);
  checkB = stackCheck(stack, b);
}, 60_000);

afterAll(() => stack.stop());

const bearer = (k: string) => ({ headers: { authorization: `Bearer ${k}` } });

async function bothRefuseWithin(plaintext: string, ms: number): Promise<boolean> {
  const start = Date.now();
  while (Date.now() - start < ms) {
    const [ra, rb] = await Promise.all([checkA(bearer(plaintext)), checkB(bearer(plaintext))]);
    if (httpStatusOf(ra) === 401 && httpStatusOf(rb) === 401) return true;
    await sleep(10);
  }
  return false;
}

describe('Redis Cluster', () => {
  it('keeps limits exact for many keys whose counters live on different masters', async () => {
    const L = 7;
    const keys = await Promise.all(Array.from({ length: 12 }, () => createKey(a, { rateLimitPerMinute: L, rateLimitPerDay: 1000 })));
    const results = await Promise.all(
      keys.flatMap((k, ki) =>
        Array.from({ length: 20 }, (_, i) => ((i + ki) % 2 ? checkA : checkB)(bearer(k.plaintext)).then((r) => ({ ki, s: httpStatusOf(r) }))),
      ),
    );
    for (let ki = 0; ki < keys.length; ki++) {
      const mine = results.filter((r) => r.ki === ki);
      expect(mine.filter((r) => r.s === 200)).toHaveLength(L);
      expect(mine.filter((r) => r.s === 429)).toHaveLength(20 - L);
    }
    // The counters really are spread over the cluster: more than one master holds some.
    let mastersWithCounters = 0;
    for (const seed of cluster.seeds) {
      const node = new Redis(seed.port, seed.host);
      const found = await node.keys(`${env.redisPrefix}rl:*`);
      node.disconnect();
      if (found.length > 0) mastersWithCounters++;
    }
    expect(mastersWithCounters).toBeGreaterThan(1);
  });

  it('propagates a revocation to both replicas through cluster pub/sub', async () => {
    const { key, plaintext } = await createKey(a);
    expect(httpStatusOf(await checkA(bearer(plaintext)))).toBe(200);
    expect(httpStatusOf(await checkB(bearer(plaintext)))).toBe(200);
    await a.deps.keyStore.revoke(key.id, 'admin', null);
    await a.deps.keyEvents.keyChanged(key.id);
    expect(await bothRefuseWithin(plaintext, 1000)).toBe(true);
  });

  it('a revocation published while every subscriber is cut off (CLIENT KILL) reaches both replicas within one second', async () => {
    const { key, plaintext } = await createKey(a);
    expect(httpStatusOf(await checkA(bearer(plaintext)))).toBe(200);
    expect(httpStatusOf(await checkB(bearer(plaintext)))).toBe(200);
    // A cluster client resubscribes on another node without a 'ready' event: what is published
    // meanwhile is lost to pub/sub, and only the key-event log can bring it.
    for (const seed of cluster.seeds) {
      const node = new Redis(seed.port, seed.host);
      await node.client('KILL', 'TYPE', 'pubsub');
      node.disconnect();
    }
    await a.deps.keyStore.revoke(key.id, 'admin', null);
    await a.deps.keyEvents.keyChanged(key.id);
    expect(await bothRefuseWithin(plaintext, 1000)).toBe(true);
  });
});
