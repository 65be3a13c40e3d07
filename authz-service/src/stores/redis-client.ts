import { Cluster, Redis } from 'ioredis';

/** A single Redis or a Redis Cluster: every Redis use in authz-service works with both. */
export type RedisClient = Redis | Cluster;

export interface RedisSettings {
  url: string;
  clusterNodes?: { host: string; port: number }[];
  commandTimeoutMs: number;
  name: string;
  /** Subscribers queue commands while reconnecting and retry forever; command clients fail fast. */
  subscriber: boolean;
}

export function connectRedis(s: RedisSettings): RedisClient {
  const options = {
    connectionName: `tollgate-authz-${s.name}`,
    // A Check must not queue behind a dead connection: fail fast and apply the failure policy.
    // A subscriber has no such deadline: its SUBSCRIBE waits for the connection and is sent when
    // it comes (with a timeout it was reported failed whenever the start was slow, though ioredis
    // still sent it and the subscription worked).
    commandTimeout: s.subscriber ? undefined : s.commandTimeoutMs,
    enableOfflineQueue: s.subscriber,
    maxRetriesPerRequest: s.subscriber ? null : 1,
    retryStrategy: (times: number) => Math.min(times * 100, 2000),
  };
  if (s.clusterNodes?.length) {
    const url = new URL(s.url);
    return new Cluster(s.clusterNodes, {
      redisOptions: {
        ...options,
        username: url.username || undefined,
        password: url.password ? decodeURIComponent(url.password) : undefined,
        tls: url.protocol === 'rediss:' ? {} : undefined,
      },
      enableOfflineQueue: s.subscriber,
      clusterRetryStrategy: options.retryStrategy,
    });
  }
  return new Redis(s.url, options);
}

/** Resolves once the client is connected; rejects after `timeoutMs` (the client keeps trying). */
export function waitForRedis(redis: RedisClient, timeoutMs: number): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      redis.off('ready', onReady);
      reject(new Error(`not ready after ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    redis.once('ready', onReady);
  });
}
