import { type Logger, PeriodicTask } from '@tollgate/common';
import type { RedisClient } from './redis-client.js';

/**
 * Cross-replica invalidation of cached keys, tokens and vault records (docs/authz.md,
 * "Revocation guarantee"). Every change publishes its id; every authz-service replica drops it
 * from its cache. Pub/sub alone can lose a message (a subscriber reconnecting, a cluster node
 * failing over), so each change is also appended, atomically with the PUBLISH, to a numbered
 * log in Redis; every replica polls the log's sequence number and replays what it missed, or
 * clears its caches when the log no longer holds the gap.
 */
export type KeyEvent =
  | { type: 'key_changed'; keyId: string }
  | { type: 'token_changed'; jti: string }
  | { type: 'provider_key_changed'; userId: string; provider: string }
  | { type: 'operator_credential_changed'; provider: string }
  | { type: 'flush' };

const EVENT_TYPES = new Set(['key_changed', 'token_changed', 'provider_key_changed', 'operator_credential_changed', 'flush']);

export function keyEventsChannel(prefix: string): string {
  return `${prefix}key-events`;
}

/** Entries the log keeps; a replica further behind than this clears its caches instead. */
const KEY_EVENT_LOG_LENGTH = 1000;

/**
 * The log's two keys, in one Redis Cluster slot (the hash tag) so that one script writes both:
 * a hash {seq, run} and a stream whose entry ids are `<seq>-1`. `run` changes whenever the
 * sequence starts over (Redis lost its data), so a replica never compares numbers of two runs.
 */
function keyEventLogKeys(channel: string): { meta: string; log: string } {
  return { meta: `${channel}:{feed}:meta`, log: `${channel}:{feed}:log` };
}

// KEYS[1] meta hash, KEYS[2] log stream; ARGV[1] channel, ARGV[2] event JSON, ARGV[3] log length.
// Returns the event's sequence number. The pub/sub message is the event JSON as it always was.
const PUBLISH_LUA = `
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
if seq == 1 then
  local t = redis.call('TIME')
  redis.call('HSET', KEYS[1], 'run', t[1] .. '.' .. t[2])
  redis.call('DEL', KEYS[2])
end
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], seq .. '-1', 'e', ARGV[2])
redis.call('PUBLISH', ARGV[1], ARGV[2])
return seq
`;

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;
/** Events held for retry; past this the oldest are dropped (their caches then expire by TTL). */
const RETRY_MAX_QUEUED = 10_000;

export class KeyEventPublisher {
  private readonly keys: { meta: string; log: string };
  private readonly queue: KeyEvent[] = [];
  private retryTimer: NodeJS.Timeout | null = null;
  private retryDelay = RETRY_MIN_MS;
  private closed = false;

  constructor(
    private readonly redis: RedisClient,
    private readonly channel: string,
    private readonly opts: { logger?: Logger } = {},
  ) {
    this.keys = keyEventLogKeys(channel);
  }

  /**
   * Each method resolves once the event is in Redis, or, if Redis refused it, once it is queued
   * for retry in the background (with backoff, until it lands or this process stops): the change
   * itself is committed either way, and a caller must not answer as if it had failed.
   */
  async keyChanged(keyId: string): Promise<void> {
    await this.publish({ type: 'key_changed', keyId });
  }

  async providerKeyChanged(userId: string, provider: string): Promise<void> {
    await this.publish({ type: 'provider_key_changed', userId, provider });
  }

  async operatorCredentialChanged(provider: string): Promise<void> {
    await this.publish({ type: 'operator_credential_changed', provider });
  }

  async tokenChanged(jti: string): Promise<void> {
    await this.publish({ type: 'token_changed', jti });
  }

  /** Events still waiting for Redis. */
  get pending(): number {
    return this.queue.length;
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private async publish(event: KeyEvent): Promise<void> {
    try {
      await this.send(event);
    } catch (err) {
      this.opts.logger?.warn({ err: (err as Error).message, event: event.type }, 'could not publish a cache invalidation; retrying in the background');
      this.enqueue(event);
    }
  }

  private send(event: KeyEvent): Promise<unknown> {
    return this.redis.eval(PUBLISH_LUA, 2, this.keys.meta, this.keys.log, this.channel, JSON.stringify(event), String(KEY_EVENT_LOG_LENGTH));
  }

  private enqueue(event: KeyEvent): void {
    if (this.closed) return;
    this.queue.push(event);
    if (this.queue.length > RETRY_MAX_QUEUED) this.queue.shift();
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.closed || this.queue.length === 0) return;
    this.retryTimer = setTimeout(() => void this.retry(), this.retryDelay);
    this.retryTimer.unref();
  }

  private async retry(): Promise<void> {
    this.retryTimer = null;
    while (this.queue.length > 0 && !this.closed) {
      try {
        await this.send(this.queue[0]!);
      } catch {
        this.retryDelay = Math.min(this.retryDelay * 2, RETRY_MAX_MS);
        this.scheduleRetry();
        return;
      }
      this.queue.shift();
      this.retryDelay = RETRY_MIN_MS;
    }
    if (this.queue.length === 0) this.opts.logger?.info('queued cache invalidations published');
  }
}

export interface KeyEventHandlers {
  onEvent: (e: KeyEvent) => void;
  /** Something may have been missed: drop every cached entry. */
  onResync: () => void;
}

/** A successful poll is trusted for this long after it was sent: poll interval plus slack, under a second. */
const SYNC_VALID_MS = 750;
/** How long a start waits for the first poll (and the subscription) before serving anyway. */
const START_WAIT_MS = 3000;

/**
 * A replica's side: pub/sub for speed, and a poll of the log's sequence every `pollMs` for
 * certainty. `synced()` says whether the last successful poll is recent enough that any change
 * made before it has been applied; caches use it to bound how long they trust an entry.
 */
export class KeyEventFeed {
  private readonly keys: { meta: string; log: string };
  /** The log run and sequence number everything up to which has been applied; null until the first poll. */
  private run: string | null = null;
  private seen = 0;
  private initialized = false;
  private lastSyncAt = -Infinity;
  private readonly task: PeriodicTask;
  private warned = false;

  constructor(
    private readonly opts: {
      subscriber: RedisClient;
      /** A connection of its own for the poll (not the subscriber, which is in subscribe mode). */
      redis: RedisClient;
      channel: string;
      pollMs: number;
      handlers: KeyEventHandlers;
      logger?: Logger;
    },
  ) {
    this.keys = keyEventLogKeys(opts.channel);
    // poll() reports its own failures (once per outage); nothing else reaches onError.
    this.task = new PeriodicTask(() => this.poll(), { intervalMs: opts.pollMs, onError: (err) => opts.logger?.warn({ err }, 'key event poll failed') });
  }

  synced(now = Date.now()): boolean {
    return now - this.lastSyncAt <= SYNC_VALID_MS;
  }

  /**
   * Subscribes and polls until the first poll succeeds, so that its resync happens before the
   * service answers Checks rather than clearing a cache already in use. Each is given up on
   * after a while, not failed, if Redis is away: the poll keeps retrying in the background.
   */
  async start(): Promise<void> {
    const { subscriber, channel } = this.opts;
    subscriber.on('message', (ch: string, message: string) => {
      if (ch === channel) this.onMessage(message);
    });
    const subscribed = subscriber
      .subscribe(channel)
      .catch((err: Error) => this.opts.logger?.warn({ err: err.message }, 'key event subscription failed; the poll still applies changes'));
    const until = Date.now() + START_WAIT_MS;
    await this.poll();
    while (!this.initialized && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 50));
      await this.poll();
    }
    void this.task.start();
    await Promise.race([subscribed, new Promise((r) => setTimeout(r, Math.max(0, until - Date.now())).unref())]);
  }

  /** Stops the poll timer; a poll under way ends on its own (its errors are caught). */
  stop(): void {
    void this.task.stop();
  }

  private onMessage(message: string): void {
    let event: KeyEvent;
    try {
      event = JSON.parse(message) as KeyEvent;
    } catch {
      this.opts.handlers.onResync();
      return;
    }
    if (!EVENT_TYPES.has(event.type)) return;
    // The poll finds this event in the log too and applies it again: invalidation is idempotent,
    // and the message carries no sequence number (its format is unchanged for other listeners),
    // so the replay cannot tell whether this message was that entry. The cost is at most one
    // more Postgres read per change per replica.
    this.opts.handlers.onEvent(event);
  }

  /** One check of the sequence; replays what was missed. */
  async poll(): Promise<void> {
    const sentAt = Date.now();
    // Read before the reply: a pub/sub message may advance `seen` while the reply is on its way.
    const seenBefore = this.seen;
    const runBefore = this.run;
    try {
      const [rawRun, rawSeq] = await this.opts.redis.hmget(this.keys.meta, 'run', 'seq');
      const run = rawRun ?? null;
      const seq = Number(rawSeq ?? 0);
      if (!this.initialized || (runBefore !== null && run !== runBefore) || seq < seenBefore) {
        // First sight, or the log started over: what was cached before now may predate a change
        // that cannot be replayed.
        this.resync(run, seq);
      } else {
        this.run = run; // unchanged, or the first event ever published (its log starts at 1)
        const from = this.seen;
        if (seq - from > KEY_EVENT_LOG_LENGTH) this.resync(run, seq);
        else if (seq > from) await this.replay(run, from);
      }
      this.lastSyncAt = sentAt;
      if (this.warned) this.opts.logger?.info('key event log reachable again');
      this.warned = false;
    } catch (err) {
      // Said once per outage, and only once it costs sync (a lone slow poll does not).
      if (!this.warned && !this.synced()) {
        this.opts.logger?.warn({ err: (err as Error).message }, 'key event log unreachable; caches trust entries for under a second until it is back');
        this.warned = true;
      }
    }
  }

  private async replay(run: string | null, from: number): Promise<void> {
    const entries = await this.opts.redis.xrange(this.keys.log, `${from + 1}-0`, '+');
    const first = entries[0] ? Number(entries[0][0].split('-')[0]) : null;
    if (first !== from + 1) {
      // The log was trimmed past what we had (or lost): replaying would leave a hole.
      const last = entries.length ? Number(entries[entries.length - 1]![0].split('-')[0]) : from;
      this.resync(run, Math.max(last, from));
      return;
    }
    for (const [id, fields] of entries) {
      const seq = Number(id.split('-')[0]);
      const json = fields[fields.indexOf('e') + 1] ?? '';
      this.seen = seq;
      try {
        const event = JSON.parse(json) as KeyEvent;
        if (EVENT_TYPES.has(event.type)) this.opts.handlers.onEvent(event);
      } catch {
        this.opts.handlers.onResync();
      }
    }
  }

  private resync(run: string | null, seq: number): void {
    this.initialized = true;
    this.opts.handlers.onResync();
    this.run = run;
    this.seen = seq;
  }
}
