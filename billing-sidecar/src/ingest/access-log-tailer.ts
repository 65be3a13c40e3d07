import type { BigIntStats } from 'node:fs';
import { open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type pg from 'pg';
import { type Logger, PeriodicTask } from '@tollgate/common';
import type { BillableRule } from '../domain/billable.js';
import { fromJsonLogLine, type UsageRecord } from '../domain/usage-record.js';
import type { BillingMetrics } from '../metrics.js';
import { HEAD_BYTES, OffsetStore, type FilePosition, type RotatingFile } from '../stores/offset-store.js';
import type { UsageWriter } from '../stores/usage-writer.js';
import { reopenEnvoyLogs } from './envoy-log-reopener.js';

const CHUNK_BYTES = 1 << 20;
const HEAD_BYTES_B64 = Math.ceil(HEAD_BYTES / 3) * 4;
/** Envoy acknowledged a reopen but no new file appeared yet (no traffic, or it restarted): ask again after this. */
const REOPEN_REASK_MS = 5_000;
const REOPEN_BACKOFF_MAX_MS = 30_000;

async function statOrUndefined(path: string): Promise<BigIntStats | undefined> {
  try {
    return await stat(path, { bigint: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function sameFile(st: BigIntStats, pos: Pick<FilePosition, 'device' | 'inode'>): boolean {
  return String(st.dev) === pos.device && String(st.ino) === pos.inode;
}

/**
 * The base64 of the file's first bytes, as many as the stored head `head` holds. The count comes
 * from decoding it: base64 pads to a multiple of 3 bytes, so working it out from the encoded
 * length reads a byte or two too many (128 bytes encode to 172 characters, which "hold" 129)
 * and every pass took a growing file for a truncated one and read it all again.
 */
async function readHead(path: string, head: string): Promise<string> {
  const bytes = Buffer.from(head, 'base64').length;
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    const { bytesRead } = await fh.read(buf, 0, bytes, 0);
    return buf.subarray(0, bytesRead).toString('base64');
  } finally {
    await fh.close();
  }
}

export interface TailerOptions {
  path: string;
  pollIntervalMs: number;
  /** This host's (pod's) name in the offset table: stable across restarts, unique per volume. */
  hostId: string;
  /** Rename the file once this many bytes of it are consumed; 0: never (an outside logrotate may). */
  rotateBytes: number;
  /** Where `POST /reopen_logs` reaches Envoy's admin interface. */
  envoyAdminUrl: string;
  /** Replaces the HTTP call to Envoy (tests of an unreachable admin). */
  reopen?: (adminUrl: string) => Promise<void>;
}

interface Rotation extends RotatingFile {
  nextReopenAt: number;
  failures: number;
}

/**
 * Reads Envoy's JSON access log from the offset stored in Postgres, then follows it. This is
 * what makes a sidecar outage lose nothing: Envoy keeps writing the file while the gRPC stream
 * is down, and on start the sidecar reads everything after where it stopped. The offset only
 * advances after the lines before it are written, and rows are keyed by request id, so a line
 * read twice (a crash between the write and the offset save) is still counted once.
 *
 * Rotation (docs/billing.md, "Rotation"): once `rotateBytes` of the file are consumed, the
 * sidecar renames it, records the new name with its offset, asks Envoy to reopen its logs, and
 * keeps reading the renamed file — Envoy writes to it until it reopens. When the new file
 * appears, Envoy has closed the old one: it is read to its end, then deleted. Until then (admin
 * unreachable) the renamed file is kept and followed, never deleted. A restart finishes a
 * renamed file before anything else. A file renamed by someone else (logrotate `create`) is
 * found again by its inode among its siblings; one truncated in place (`copytruncate`) is read
 * from its start again.
 */
export class AccessLogTailer {
  private pos: FilePosition | undefined;
  private rotations: Rotation[] = [];
  private readonly offsets: OffsetStore;
  private readonly task: PeriodicTask;
  private partialWarned = false;

  constructor(
    pool: pg.Pool,
    private readonly writer: UsageWriter,
    private readonly rule: BillableRule,
    private readonly opts: TailerOptions,
    private readonly metrics: BillingMetrics,
    private readonly logger: Logger,
  ) {
    this.offsets = new OffsetStore(pool, opts.hostId, opts.path);
    this.task = new PeriodicTask(() => this.pass(), {
      intervalMs: opts.pollIntervalMs,
      runAtStart: true,
      onError: (err) => logger.error({ err }, 'reading the access log failed; retrying'),
    });
  }

  private get stopped(): boolean {
    return this.task.stopped;
  }

  async start(): Promise<void> {
    await this.offsets.adoptLegacy();
    const saved = await this.offsets.load();
    this.pos = saved.active;
    for (const r of saved.rotating) await this.resume(r);
    this.logger.info(
      { path: this.opts.path, offset: this.pos?.offset ?? 0, pendingRotations: this.rotations.length, rotateBytes: this.opts.rotateBytes },
      'following the JSON access log',
    );
    // The first pass (the backfill) runs before start() returns, so a caller knows it is done.
    await this.task.start();
  }

  stop(): Promise<void> {
    return this.task.stop();
  }

  /** Reads whatever is new; exposed for tests that want to wait for a pass. */
  async poll(): Promise<void> {
    await this.task.runNow();
  }

  /** A rotation found at start: its renamed file is finished first; if the rename never happened, it is the current file. */
  private async resume(r: RotatingFile): Promise<void> {
    const renamed = await statOrUndefined(r.rotatedTo);
    if (renamed && sameFile(renamed, r.pos)) {
      this.logger.info({ rotatedTo: r.rotatedTo, offset: r.pos.offset }, 'resuming an access-log rotation');
      this.rotations.push({ ...r, nextReopenAt: 0, failures: 0 });
      return;
    }
    const current = await statOrUndefined(this.opts.path);
    if (current && sameFile(current, r.pos)) {
      // Stopped between recording the rotation and the rename: nothing was renamed.
      await this.offsets.save(r.pos, null);
      this.pos = r.pos;
      return;
    }
    // Stopped after the renamed file was finished and deleted, before its row was.
    await this.offsets.forget(r.pos);
  }

  private async pass(): Promise<void> {
    while (this.rotations.length > 0) {
      if (!(await this.continueRotation(this.rotations[0]!))) return;
      this.rotations.shift();
    }
    const st = await statOrUndefined(this.opts.path);
    if (!st) return; // Envoy has not written yet
    const current = { device: String(st.dev), inode: String(st.ino) };
    if (this.pos && !sameFile(st, this.pos)) {
      await this.finishRotated(this.pos);
      await this.offsets.forget(this.pos);
      this.pos = undefined;
    }
    this.pos ??= { ...current, offset: 0, head: '' };
    const size = Number(st.size);
    if (size < this.pos.offset || (this.pos.offset > 0 && (await readHead(this.opts.path, this.pos.head)) !== this.pos.head)) {
      this.logger.warn({ path: this.opts.path, offset: this.pos.offset, size }, 'access log truncated; reading it from the start');
      this.pos.offset = 0;
      this.pos.head = '';
    }
    await this.readFrom(this.opts.path, this.pos, size);
    this.metrics.accessLogBytesBehind.set(Math.max(0, size - this.pos.offset));
    if (this.opts.rotateBytes > 0 && this.pos.offset >= this.opts.rotateBytes && !this.stopped) await this.beginRotation(this.pos);
  }

  /**
   * Renames the file away. The new name is saved with the offset before the rename, so a
   * restart after it knows which file to finish (and one before it finds nothing renamed).
   */
  private async beginRotation(pos: FilePosition): Promise<void> {
    const stamp = new Date().toISOString().replace(/[-:.]/g, '');
    const rotatedTo = `${this.opts.path}.${stamp}`;
    await this.offsets.save(pos, rotatedTo);
    try {
      await rename(this.opts.path, rotatedTo);
    } catch (err) {
      await this.offsets.save(pos, null);
      throw err;
    }
    this.logger.info({ rotatedTo, offset: pos.offset }, 'access log renamed; asking Envoy to reopen it');
    this.pos = undefined;
    const rotation: Rotation = { pos, rotatedTo, nextReopenAt: 0, failures: 0 };
    this.rotations.push(rotation);
    if (await this.continueRotation(rotation)) this.rotations.shift();
  }

  /**
   * Reads the renamed file; once Envoy has created the new one (so it has closed this one),
   * reads it to its end and deletes it. True when the rotation is over.
   */
  private async continueRotation(r: Rotation): Promise<boolean> {
    const renamed = await statOrUndefined(r.rotatedTo);
    if (!renamed || !sameFile(renamed, r.pos)) {
      this.logger.warn(
        { rotatedTo: r.rotatedTo, offset: r.pos.offset },
        'the renamed access log disappeared before it was read to its end; lines after the offset may be missing',
      );
      await this.offsets.forget(r.pos);
      return true;
    }
    await this.readFrom(r.rotatedTo, r.pos, Number(renamed.size), r.rotatedTo);
    const current = await statOrUndefined(this.opts.path);
    if (!current || sameFile(current, r.pos)) {
      await this.requestReopen(r);
      return false;
    }
    // Envoy closes the old file before it creates the new one: what it flushed before is the rest.
    const final = Number((await stat(r.rotatedTo, { bigint: true })).size);
    await this.readFrom(r.rotatedTo, r.pos, final, r.rotatedTo);
    if (this.stopped) return false;
    if (r.pos.offset < final) {
      this.logger.warn(
        { rotatedTo: r.rotatedTo, bytes: final - r.pos.offset },
        'the renamed access log ends in an unterminated line (a torn write); it is not usage',
      );
    }
    await unlink(r.rotatedTo);
    await this.offsets.forget(r.pos);
    this.metrics.accessLogRotations.inc();
    this.logger.info({ rotatedTo: r.rotatedTo, bytes: final }, 'rotated access log read to its end and deleted');
    return true;
  }

  /** POST /reopen_logs, not more often than needed; when Envoy is unreachable, again with backoff. */
  private async requestReopen(r: Rotation): Promise<void> {
    if (Date.now() < r.nextReopenAt) return;
    try {
      await (this.opts.reopen ?? reopenEnvoyLogs)(this.opts.envoyAdminUrl);
      r.failures = 0;
      r.nextReopenAt = Date.now() + REOPEN_REASK_MS;
    } catch (err) {
      r.failures++;
      r.nextReopenAt = Date.now() + Math.min(REOPEN_BACKOFF_MAX_MS, 250 * 2 ** Math.min(r.failures, 7));
      this.metrics.accessLogReopenFailures.inc();
      this.logger.warn(
        { err: (err as Error).message, envoyAdminUrl: this.opts.envoyAdminUrl, attempts: r.failures, rotatedTo: r.rotatedTo },
        'Envoy did not reopen its access log; the renamed file is kept and followed until it does',
      );
    }
  }

  /** The file we were reading was renamed: read the rest of it under its new name, if still there. */
  private async finishRotated(old: FilePosition): Promise<void> {
    const dir = dirname(this.opts.path);
    const base = basename(this.opts.path);
    for (const name of await readdir(dir)) {
      if (name === base || !name.startsWith(base)) continue;
      const p = join(dir, name);
      const st = await stat(p, { bigint: true }).catch(() => undefined);
      if (st && String(st.ino) === old.inode && String(st.dev) === old.device) {
        this.logger.info({ rotatedTo: p, offset: old.offset }, 'access log rotated; finishing the old file');
        await this.readFrom(p, { ...old }, Number(st.size));
        return;
      }
    }
    this.logger.warn({ path: this.opts.path }, 'access log rotated and the old file is gone; lines after the last offset may be missing');
  }

  /** Reads complete lines from `pos.offset` up to `size`, writing each chunk before advancing `pos`. */
  private async readFrom(path: string, pos: FilePosition, size: number, rotatedTo: string | null = null): Promise<void> {
    if (pos.offset >= size) return;
    const fh = await open(path, 'r');
    try {
      let chunkBytes = CHUNK_BYTES;
      while (pos.offset < size && !this.stopped) {
        const len = Math.min(chunkBytes, size - pos.offset);
        const buf = Buffer.allocUnsafe(len);
        const { bytesRead } = await fh.read(buf, 0, len, pos.offset);
        if (bytesRead === 0) break;
        const lastNewline = buf.lastIndexOf(0x0a, bytesRead - 1);
        if (lastNewline === -1) {
          // No complete line yet: Envoy is mid-write, or a line is longer than the chunk.
          if (len < size - pos.offset) {
            chunkBytes *= 2;
            continue;
          }
          if (!this.partialWarned && bytesRead > CHUNK_BYTES) {
            this.partialWarned = true;
            this.logger.warn({ path, bytes: bytesRead }, 'access log ends in a long unterminated line');
          }
          break;
        }
        const consumed = lastNewline + 1;
        await this.ingest(buf.toString('utf8', 0, consumed));
        if (pos.offset === 0 || pos.head.length < HEAD_BYTES_B64) {
          const head = Buffer.alloc(HEAD_BYTES);
          const { bytesRead: n } = await fh.read(head, 0, HEAD_BYTES, 0);
          pos.head = head.subarray(0, n).toString('base64');
        }
        pos.offset += consumed;
        await this.offsets.save(pos, rotatedTo);
        chunkBytes = CHUNK_BYTES;
      }
    } finally {
      await fh.close();
    }
  }

  private async ingest(text: string): Promise<void> {
    const records: UsageRecord[] = [];
    let seen = 0;
    const now = new Date();
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      seen++;
      const r = fromJsonLogLine(line, this.rule, now);
      if ('record' in r) records.push(r.record);
      else this.metrics.entriesSkipped.inc({ source: 'file', reason: r.skip });
    }
    this.metrics.entriesReceived.inc({ source: 'file' }, seen);
    await this.writer.waitForRoom();
    await this.writer.add(records);
  }
}
