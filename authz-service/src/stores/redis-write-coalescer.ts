import type { Socket } from 'node:net';
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
  private readonly single: Redis | null;
  private corked: Socket | null = null;

  constructor(redis: RedisClient) {
    this.single = redis instanceof Redis ? redis : null;
  }

  /** Call right after a command was handed to the client, before awaiting its reply. */
  sent(): void {
    if (this.corked || !this.single || this.single.status !== 'ready') return;
    // ioredis replaces the socket on reconnect: cork the one the command was just written to,
    // and uncork that same one even if it has been replaced since.
    const socket = this.single.stream;
    if (socket.destroyed) return;
    socket.cork();
    this.corked = socket;
    setImmediate(() => {
      this.corked = null;
      socket.uncork();
    });
  }
}
