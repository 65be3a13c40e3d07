import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { type Logger, PeriodicTask } from '@tollgate/common';
import type pg from 'pg';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Envelope } from '../vault/envelope.js';
import type { SealedWebhookEndpoint, WebhookEndpointStore } from './endpoint-store.js';
import { retryDelayMs } from './retry-schedule.js';
import { signedHeaders } from './signer.js';
import { checkWebhookUrl, guardedLookup } from './target-guard.js';

export interface DispatcherSettings {
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  timeoutMs: number;
  pollIntervalMs: number;
  allowPrivate: boolean;
}

interface DueRow {
  id: string;
  endpoint_id: string;
  event_type: string;
  payload: unknown;
  attempts: number;
}

type AttemptResult = { ok: true; status: number } | { ok: false; status: number | null; error: string };

/** Deliveries taken per poll and replica; each is sent concurrently. */
const BATCH = 20;
/** Of a receiver's answer only this much is kept, to say why it refused. */
const ERROR_EXCERPT = 200;

/**
 * Sends the webhook outbox. Every replica polls; `for update skip locked` and a lease give each
 * due delivery to one of them, and a replica that dies mid-send leaves a lease that runs out, so
 * another sends it again (at-least-once, with the same `webhook-id`, which receivers dedupe on).
 */
export class WebhookDispatcher {
  private readonly task: PeriodicTask<number>;
  private readonly attempts: Counter<'outcome'>;
  private readonly failures: Counter<'endpoint'>;

  constructor(
    private readonly d: {
      pool: pg.Pool;
      endpoints: WebhookEndpointStore;
      envelope: () => Envelope | null;
      logger: Logger;
      registry: Registry;
      settings: DispatcherSettings;
    },
  ) {
    this.attempts = new Counter({
      name: 'tollgate_webhook_delivery_attempts_total',
      help: 'Outbound webhook delivery attempts by outcome: delivered, retrying (will be tried again) or failed (parked after WEBHOOK_MAX_ATTEMPTS)',
      labelNames: ['outcome'],
      registers: [d.registry],
    });
    this.failures = new Counter({
      name: 'tollgate_webhook_deliveries_failed_total',
      help: 'Outbound webhook attempts that failed (non-2xx, timeout, refused target), by endpoint id',
      labelNames: ['endpoint'],
      registers: [d.registry],
    });
    this.task = new PeriodicTask(() => this.tick(), {
      intervalMs: d.settings.pollIntervalMs,
      onError: (err) => d.logger.warn({ err: (err as Error).message }, 'webhook dispatch failed; will retry'),
    });
    const pool = d.pool;
    new Gauge({
      name: 'tollgate_webhook_deliveries_pending',
      help: 'Outbound webhook deliveries queued and not yet delivered or parked',
      registers: [d.registry],
      async collect() {
        const r = await pool.query<{ n: string }>(`select count(*)::text as n from webhook_deliveries where status = 'pending'`).catch(() => null);
        if (r) this.set(Number(r.rows[0]!.n));
      },
    });
  }

  start(): void {
    void this.task.start();
  }

  stop(): Promise<void> {
    return this.task.stop();
  }

  /** One poll: claims what is due and sends it. Returns how many deliveries were attempted. */
  async tick(): Promise<number> {
    const leaseSeconds = Math.ceil((this.d.settings.timeoutMs * 2) / 1000) + 5;
    const due = await this.d.pool.query<DueRow>(
      `update webhook_deliveries set leased_until = now() + make_interval(secs => $2), attempts = attempts + 1, last_attempt_at = now()
        where id in (
          select id from webhook_deliveries
           where status = 'pending' and next_attempt_at <= now() and (leased_until is null or leased_until < now())
           order by next_attempt_at limit $1 for update skip locked)
        returning id, endpoint_id, event_type, payload, attempts`,
      [BATCH, leaseSeconds],
    );
    const endpoints = new Map<string, SealedWebhookEndpoint | null>();
    for (const row of due.rows) {
      if (!endpoints.has(row.endpoint_id)) endpoints.set(row.endpoint_id, await this.d.endpoints.getSealed(row.endpoint_id));
    }
    await Promise.all(due.rows.map((row) => this.deliver(row, endpoints.get(row.endpoint_id) ?? null)));
    return due.rows.length;
  }

  private async deliver(row: DueRow, endpoint: SealedWebhookEndpoint | null): Promise<void> {
    const result: AttemptResult = endpoint ? await this.attempt(row, endpoint) : { ok: false, status: null, error: 'endpoint deleted' };
    const s = this.d.settings;
    if (result.ok) {
      await this.d.pool.query(
        `update webhook_deliveries set status = 'delivered', delivered_at = now(), last_status = $2, last_error = null, leased_until = null where id = $1`,
        [row.id, result.status],
      );
      this.attempts.inc({ outcome: 'delivered' });
      return;
    }
    this.failures.inc({ endpoint: row.endpoint_id });
    const parked = row.attempts >= s.maxAttempts;
    const delay = retryDelayMs(row.attempts, s.retryBaseMs, s.retryMaxMs);
    await this.d.pool.query(
      `update webhook_deliveries set status = $2, last_status = $3, last_error = $4, leased_until = null,
         next_attempt_at = case when $2 = 'pending' then now() + make_interval(secs => $5) else next_attempt_at end
       where id = $1`,
      [row.id, parked ? 'failed' : 'pending', result.status, result.error, delay / 1000],
    );
    this.attempts.inc({ outcome: parked ? 'failed' : 'retrying' });
    this.d.logger.warn(
      { delivery: row.id, endpoint: row.endpoint_id, event: row.event_type, attempt: row.attempts, status: result.status, error: result.error, parked },
      parked ? 'webhook delivery failed for good (parked; retry it with POST /api/webhook-deliveries/:id/retry)' : 'webhook delivery failed; will retry',
    );
  }

  private secretsOf(endpoint: SealedWebhookEndpoint): string[] {
    const envelope = this.d.envelope();
    if (!envelope) throw new Error('the vault is off (VAULT_MASTER_KEYS unset): webhook secrets cannot be opened');
    const secrets = [envelope.openWebhookSecret(endpoint.secret, endpoint.id)];
    if (endpoint.previousSecret && endpoint.previousSecretExpiresAt && endpoint.previousSecretExpiresAt.getTime() > Date.now()) {
      secrets.push(envelope.openWebhookSecret(endpoint.previousSecret, endpoint.id));
    }
    return secrets;
  }

  private async attempt(row: DueRow, endpoint: SealedWebhookEndpoint): Promise<AttemptResult> {
    let url: URL;
    let secrets: string[];
    try {
      url = checkWebhookUrl(endpoint.url, this.d.settings.allowPrivate);
      secrets = this.secretsOf(endpoint);
    } catch (err) {
      return { ok: false, status: null, error: (err as Error).message };
    }
    const body = JSON.stringify(row.payload);
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'Tollgate-Webhooks/1',
      ...signedHeaders(row.id, new Date(), body, secrets),
    };
    return send(url, headers, body, this.d.settings);
  }
}

/** One POST; no redirect is followed (a redirect could lead past the target check). */
function send(url: URL, headers: Record<string, string>, body: string, s: DispatcherSettings): Promise<AttemptResult> {
  const client = url.protocol === 'https:' ? https : http;
  const literal = isIP(url.hostname.replace(/^\[|\]$/g, '')) !== 0;
  return new Promise((resolve) => {
    const req = client.request(
      url,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        timeout: s.timeoutMs,
        signal: AbortSignal.timeout(s.timeoutMs),
        ...(literal ? {} : { lookup: guardedLookup(s.allowPrivate) }),
      },
      (res) => {
        const status = res.statusCode ?? 0;
        let excerpt = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (excerpt.length < ERROR_EXCERPT) excerpt += chunk.slice(0, ERROR_EXCERPT - excerpt.length);
        });
        res.on('end', () =>
          resolve(status >= 200 && status < 300 ? { ok: true, status } : { ok: false, status, error: `HTTP ${status}${excerpt ? `: ${excerpt}` : ''}` }),
        );
        res.on('error', (err) => resolve({ ok: false, status, error: err.message }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${s.timeoutMs} ms`)));
    // A refused target (guardedLookup) arrives here too, its message saying which address.
    req.on('error', (err) => resolve({ ok: false, status: null, error: err.message }));
    req.end(body);
  });
}
