import { type Logger, PeriodicTask } from '@tollgate/common';
import { readOperatorCredentialRejections } from '@tollgate/usage-model';
import type pg from 'pg';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { OperatorCredentialStore } from '../vault/operator-credential-store.js';

export interface OperatorCredentialHealthOptions {
  /** OPERATOR_CREDENTIAL_REJECT_STATUSES. */
  rejectStatuses: readonly number[];
  /** OPERATOR_CREDENTIAL_HEALTH_INTERVAL_MS; 0: never read (nothing is taken out of rotation). */
  intervalMs: number;
}

type OperatorHealthMetrics = { outOfRotation: Gauge<'provider'>; rejected: Counter<'provider' | 'credential_id' | 'status'> };

export function createOperatorHealthMetrics(registry: Registry): OperatorHealthMetrics {
  return {
    outOfRotation: new Gauge({
      name: 'tollgate_authz_operator_credentials_out_of_rotation',
      help: 'Operator credentials their provider rejected since they were last rotated, by provider',
      labelNames: ['provider'],
      registers: [registry],
    }),
    rejected: new Counter({
      name: 'tollgate_authz_operator_credential_rejections_total',
      help: 'Operator credentials taken out of rotation, by provider, credential id (never the secret) and the rejecting status',
      labelNames: ['provider', 'credential_id', 'status'],
      registers: [registry],
    }),
  };
}

const UNDEFINED_TABLE = '42P01';

export interface OutOfRotation {
  provider: string;
  status: number;
  /** The latest rejected request's start: a credential updated (rotated) after it is back in. */
  rejectedAt: Date;
}

/**
 * The credentials out of rotation: those answered with a rejecting status after their last
 * update. One rule for the Check's in-memory state and for what the management API shows.
 */
export async function readOutOfRotation(
  pool: pg.Pool,
  rejectStatuses: readonly number[],
  credentials: ReadonlyMap<string, { provider: string; updatedAt: Date }>,
): Promise<Map<string, OutOfRotation>> {
  const out = new Map<string, OutOfRotation>();
  if (credentials.size === 0) return out;
  for (const r of await readOperatorCredentialRejections(pool, rejectStatuses)) {
    const c = credentials.get(r.operator_credential_id);
    if (c && r.last_seen_at.getTime() > c.updatedAt.getTime())
      out.set(r.operator_credential_id, { provider: c.provider, status: r.status, rejectedAt: r.last_seen_at });
  }
  return out;
}

/** Whether an error means the usage tables are not there (billing-sidecar not migrated). */
export const isMissingTable = (err: unknown): boolean => (err as { code?: string }).code === UNDEFINED_TABLE;

/**
 * Which operator credentials their provider rejected (docs/vault.md, "Rejected operator
 * credentials"). billing-sidecar keeps the upstream's error statuses per operator credential
 * as it records usage (usage-model 006); every replica reads them on a timer, off the Check
 * path, and a credential answered with a rejecting status after its last update is out of
 * rotation until it is rotated. The Check asks `isOut` of this in-memory state only: no
 * Postgres, no Redis. Announced in the log and metrics by id and provider, never the secret.
 */
export class OperatorCredentialHealth {
  private out = new Map<string, OutOfRotation>();
  private readonly task: PeriodicTask;
  private tablesMissingLogged = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly store: OperatorCredentialStore,
    private readonly opts: OperatorCredentialHealthOptions,
    private readonly logger: Logger,
    private readonly metrics: OperatorHealthMetrics,
  ) {
    this.task = new PeriodicTask(() => this.read(), { intervalMs: opts.intervalMs, runAtStart: true, onError: (err) => this.readFailed(err) });
  }

  /** Whether the credential (as last updated at `updatedAt`) is out of rotation. */
  isOut(id: string, updatedAt: Date): boolean {
    const o = this.out.get(id);
    return o !== undefined && o.rejectedAt.getTime() > updatedAt.getTime();
  }

  /** Reads at once, then every interval after the last read ended. */
  start(): void {
    void this.task.start();
  }

  stop(): Promise<void> {
    return this.task.stop();
  }

  /** One read of the rejections against the credentials' last updates. */
  async refresh(): Promise<void> {
    await this.task.runNow();
  }

  private readFailed(err: unknown): void {
    // Without billing-sidecar (whose migrations make the table) there is nothing to read.
    if (isMissingTable(err)) {
      if (!this.tablesMissingLogged) this.logger.info('no usage tables (billing-sidecar not migrated): operator credentials are not checked for rejections');
      this.tablesMissingLogged = true;
    } else {
      this.logger.warn({ err: (err as Error).message }, 'operator credential rejections could not be read; will retry');
    }
  }

  private async read(): Promise<void> {
    const credentials = new Map((await this.store.list()).map((c) => [c.id, c]));
    const next = await readOutOfRotation(this.pool, this.opts.rejectStatuses, credentials);
    for (const [id, o] of next) {
      if (this.out.has(id)) continue;
      this.metrics.rejected.inc({ provider: o.provider, credential_id: id, status: String(o.status) });
      this.logger.warn(
        { operatorCredentialId: id, provider: o.provider, status: o.status, rejectedAt: o.rejectedAt.toISOString() },
        'operator credential rejected by its provider; taken out of rotation until it is rotated',
      );
    }
    for (const [id, o] of this.out) {
      if (!next.has(id)) this.logger.info({ operatorCredentialId: id, provider: o.provider }, 'operator credential back in rotation');
    }
    this.out = next;
    const perProvider = new Map<string, number>();
    for (const c of credentials.values()) perProvider.set(c.provider, 0);
    for (const o of next.values()) perProvider.set(o.provider, (perProvider.get(o.provider) ?? 0) + 1);
    this.metrics.outOfRotation.reset();
    for (const [provider, n] of perProvider) this.metrics.outOfRotation.set({ provider }, n);
  }
}
