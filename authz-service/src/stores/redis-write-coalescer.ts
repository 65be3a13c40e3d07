import { Redis } from 'ioredis';
import type { RedisClient } from './redis-client.js';

/**
 * Sends the Redis commands of one event-loop turn in as few system calls as it can without
 * delaying any command when the service is idle.
 *
 * Every gRPC call reaches its handler in a callback of its own, so commands issued by Checks
 * that arrived together are never in one synchronous stretch; each would be a `write(2)` of its
 * own, the largest single item in authz-service's CPU profile. Deferring every command to the
 * next turn (ioredis' auto-pipelining) batches them but makes even a lone Check wait a turn.
 * Here the first command of a turn is written at once, as without coalescing; only the commands
 * that follow it in the same turn are held (the socket is corked) and leave together with one
 * `writev(2)` when the turn's I/O callbacks are done (`setImmediate`).
 *
 * A Redis Cluster spreads commands over one connection per master; there the coalescer does
 * nothing (each command is written at once).
 */
export class RedisWriteCoalescer {
  private corked: NodeJS.WritableStream & { uncork(): void } | null = null;

  constructor(private readonly redis: RedisClient) {}

  /** Call right after a command was handed to the client, before awaiting its reply. */
  sent(): void {
    if (this.corked || !(this.redis instanceof Redis) || this.redis.status !== 'ready') return;
    const stream = this.redis.stream as unknown as { cork?: () => void; uncork(): void; destroyed?: boolean };
    if (!stream?.cork || stream.destroyed) return;
    stream.cork();
    this.corked = stream as never;
    setImmediate(() => {
      const s = this.corked;
      this.corked = null;
      s?.uncork();
    });
  }
}
