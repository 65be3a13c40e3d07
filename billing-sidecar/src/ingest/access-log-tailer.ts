import { open, readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type pg from 'pg';
import type { Logger } from '@tollgate/common';
import type { BillableRule } from '../domain/billable.js';
import { fromJsonLogLine, type UsageRecord } from '../domain/usage-record.js';
import type { BillingMetrics } from '../metrics.js';
import { HEAD_BYTES, loadPosition, savePosition, type FilePosition } from '../stores/offset-store.js';
import type { UsageWriter } from '../stores/usage-writer.js';

const CHUNK_BYTES = 1 << 20;
const HEAD_BYTES_B64 = Math.ceil(HEAD_BYTES / 3) * 4;

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
}

/**
 * Reads Envoy's JSON access log from the offset stored in Postgres, then follows it. This is
 * what makes a sidecar outage lose nothing: Envoy keeps writing the file while the gRPC stream
 * is down, and on start the sidecar reads everything after where it stopped. The offset only
 * advances after the lines before it are written, and rows are keyed by request id, so a line
 * read twice (a crash between the write and the offset save) is still counted once.
 *
 * Rotation: a file renamed away (logrotate `create` + Envoy's `/reopen_logs`) is found again by
 * its inode among its siblings and finished before the new file is read from its start; a file
 * truncated in place (`copytruncate`) is read from its start again.
 */
export class AccessLogTailer {
  private pos: FilePosition | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private partialWarned = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly writer: UsageWriter,
    private readonly rule: BillableRule,
    private readonly opts: TailerOptions,
    private readonly metrics: BillingMetrics,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    this.pos = await loadPosition(this.pool, this.opts.path);
    this.logger.info({ path: this.opts.path, offset: this.pos?.offset ?? 0 }, 'following the JSON access log');
    // The first pass (the backfill) runs before start() returns, so a caller knows it is done.
    await this.poll();
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** Reads whatever is new; exposed for tests that want to wait for a pass. */
  poll(): Promise<void> {
    this.running ??= this.pass()
      .catch((err: unknown) => this.logger.error({ err }, 'reading the access log failed; retrying'))
      .finally(() => (this.running = undefined));
    return this.running;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.poll().then(() => this.schedule()), this.opts.pollIntervalMs);
  }

  private async pass(): Promise<void> {
    let st;
    try {
      st = await stat(this.opts.path, { bigint: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // Envoy has not written yet
      throw err;
    }
    const current = { device: String(st.dev), inode: String(st.ino) };
    if (this.pos && (this.pos.inode !== current.inode || this.pos.device !== current.device)) {
      await this.finishRotated(this.pos);
      this.pos = { ...current, offset: 0, head: '' };
      await savePosition(this.pool, this.opts.path, this.pos);
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
  private async readFrom(path: string, pos: FilePosition, size: number): Promise<void> {
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
        await savePosition(this.pool, this.opts.path, pos);
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
