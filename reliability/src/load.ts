// An open-loop load client: requests leave at a fixed rate whatever the gateway does (a closed
// loop would slow down exactly when the gateway misbehaves and hide it). Every answer is kept:
// what kind of credential went out, the status that came back, and whether an allowed request
// reached the upstream with the identity of the key that was sent.
import { Agent, request } from 'node:http';
import type { IssuedKey } from './keys.js';
import { malformedKey, unknownKey } from './keys.js';

/** valid: a key with generous limits; limited: a key whose limit the run exceeds; unknown: well-formed, never issued; malformed: bad checksum. */
export type Kind = 'valid' | 'limited' | 'unknown' | 'malformed';

export interface Sample {
  /** When the request left, ms since the run started. */
  at: number;
  /** When its answer (or error) came, ms since the run started. */
  doneAt: number;
  kind: Kind;
  keyId: string | null;
  /** HTTP status; 0 when no response came (connection refused or reset, timeout). */
  status: number;
  error?: string;
  /** For 200s: the upstream saw the identity of the key that was sent (not someone else's, not none). */
  identityOk?: boolean;
  /** For 200s: the x-request-id Envoy gave the request (as the upstream saw it), billing's key. */
  requestId?: string;
}

export interface LoadOptions {
  url: string;
  /** Requests per second. */
  rate: number;
  mix: Partial<Record<Kind, number>>;
  keys: { valid: IssuedKey[]; limited: IssuedKey[] };
  path?: string;
  timeoutMs?: number;
  /** Keep every sample (tests); without it only the counts are kept (long soaks). */
  keepSamples?: boolean;
}

export interface Counts {
  sent: number;
  byKindStatus: Record<string, number>;
  /** Answers to requests with an issued key that billing must count (status not 0, not 429, not 5xx). */
  billable: number;
  billableByKey: Map<string, number>;
  /** An unknown or malformed key that got a 2xx: must never happen. */
  invalidAllowed: number;
  /** A 200 whose upstream did not see the sent key's identity: must never happen. */
  unchecked: number;
  /** An issued, valid key refused as unauthenticated (401/403): never, under any fault. */
  validRefused: number;
  errors: Record<string, number>;
}

export function isBillable(status: number): boolean {
  return status !== 0 && status !== 429 && status < 500;
}

export class LoadRun {
  readonly samples: Sample[] = [];
  readonly counts: Counts = {
    sent: 0,
    byKindStatus: {},
    billable: 0,
    billableByKey: new Map(),
    invalidAllowed: 0,
    unchecked: 0,
    validRefused: 0,
    errors: {},
  };
  readonly marks: { label: string; at: number }[] = [];
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 256 });
  private readonly started = performance.now();
  private timer: NodeJS.Timeout | undefined;
  private inFlight = 0;
  private drained: (() => void) | undefined;
  private readonly weights: [Kind, number][];
  private readonly total: number;
  private readonly target: URL;
  private issued = 0;
  private stopped = false;

  constructor(private readonly opts: LoadOptions) {
    this.weights = (Object.entries(opts.mix) as [Kind, number][]).filter(([, w]) => w > 0);
    this.total = this.weights.reduce((s, [, w]) => s + w, 0);
    this.target = new URL(opts.path ?? '/hello', opts.url);
    for (const [k] of this.weights) {
      if ((k === 'valid' || k === 'limited') && opts.keys[k].length === 0) throw new Error(`mix has ${k} but no ${k} keys`);
    }
    this.tick();
  }

  now(): number {
    return performance.now() - this.started;
  }

  mark(label: string): number {
    const at = this.now();
    this.marks.push({ label, at });
    return at;
  }

  private pick(): Kind {
    let r = Math.random() * this.total;
    for (const [k, w] of this.weights) if ((r -= w) < 0) return k;
    return this.weights[0]![0];
  }

  private tick = (): void => {
    if (this.stopped) return;
    const due = Math.floor((this.now() / 1000) * this.opts.rate);
    while (this.issued < due) {
      this.issued++;
      this.send(this.pick());
    }
    // A short timer, not a busy loop: the client must not starve the gateway of CPU.
    this.timer = setTimeout(this.tick, 5);
  };

  private send(kind: Kind): void {
    let key: IssuedKey | null = null;
    let credential: string;
    if (kind === 'valid' || kind === 'limited') {
      const list = this.opts.keys[kind];
      key = list[this.counts.sent % list.length]!;
      credential = key.plaintext;
    } else {
      credential = kind === 'unknown' ? unknownKey() : malformedKey();
    }
    this.counts.sent++;
    this.inFlight++;
    const at = this.now();
    const finish = (status: number, error?: string, identityOk?: boolean, requestId?: string) => {
      this.record({ at, doneAt: this.now(), kind, keyId: key?.id ?? null, status, error, identityOk, requestId });
      if (--this.inFlight === 0 && this.drained) this.drained();
    };
    let settled = false;
    const req = request(
      this.target,
      { agent: this.agent, method: 'GET', headers: { authorization: `Bearer ${credential}` }, timeout: this.opts.timeoutMs ?? 10_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          if (settled) return;
          settled = true;
          const status = res.statusCode ?? 0;
          let identityOk: boolean | undefined;
          let requestId: string | undefined;
          if (status === 200) {
            try {
              const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { user_id?: string; api_key_id?: string; request_id?: string };
              identityOk = key !== null && body.user_id === key.userId && body.api_key_id === key.id;
              requestId = body.request_id;
            } catch {
              identityOk = false;
            }
          }
          finish(status, undefined, identityOk, requestId);
        });
        res.on('error', (err: NodeJS.ErrnoException) => {
          if (settled) return;
          settled = true;
          finish(0, err.code ?? err.message);
        });
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      finish(0, err.code ?? err.message);
    });
    req.end();
  }

  private record(s: Sample): void {
    if (this.opts.keepSamples !== false) this.samples.push(s);
    const c = this.counts;
    const k = `${s.kind}:${s.status}`;
    c.byKindStatus[k] = (c.byKindStatus[k] ?? 0) + 1;
    if (s.error) c.errors[s.error] = (c.errors[s.error] ?? 0) + 1;
    const issuedKey = s.kind === 'valid' || s.kind === 'limited';
    if (issuedKey && isBillable(s.status)) {
      c.billable++;
      c.billableByKey.set(s.keyId!, (c.billableByKey.get(s.keyId!) ?? 0) + 1);
    }
    if (!issuedKey && s.status >= 200 && s.status < 300) c.invalidAllowed++;
    if (issuedKey && s.status === 200 && !s.identityOk) c.unchecked++;
    if (issuedKey && (s.status === 401 || s.status === 403)) c.validRefused++;
  }

  /** Stops sending and waits for every request in flight to be answered or to fail. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.inFlight > 0) await new Promise<void>((r) => (this.drained = r));
    this.agent.destroy();
  }
}

/** Status counts per second of the run ("401": n, "0": n, ...), by when requests left. */
export function perSecond(samples: Sample[], filter: (s: Sample) => boolean = () => true): Record<string, number>[] {
  const out: Record<string, number>[] = [];
  for (const s of samples) {
    if (!filter(s)) continue;
    const sec = Math.floor(s.at / 1000);
    while (out.length <= sec) out.push({});
    const key = String(s.status);
    out[sec]![key] = (out[sec]![key] ?? 0) + 1;
  }
  return out;
}

export function formatTimeline(rows: Record<string, number>[]): string {
  return rows
    .map(
      (r, i) =>
        `${String(i).padStart(3)}s ${Object.entries(r)
          .sort()
          .map(([k, v]) => `${k}:${v}`)
          .join(' ')}`,
    )
    .join('\n');
}
