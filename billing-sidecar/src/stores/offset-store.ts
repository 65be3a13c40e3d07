import type pg from 'pg';

/** Which file (device + inode) the offset belongs to, so a rotated file is never misread. */
export interface FilePosition {
  device: string;
  inode: string;
  offset: number;
  /** Up to HEAD_BYTES of the file's start, base64, as read when the offset was saved. */
  head: string;
}

/** A file the sidecar renamed away and has not yet finished reading and deleted. */
export interface RotatingFile {
  pos: FilePosition;
  rotatedTo: string;
}

export const HEAD_BYTES = 128;

/**
 * Offsets are keyed by the file's identity on one host: (host id, device, inode). The path is
 * kept beside it to find this log's rows, never as the key: two sidecars on different hosts
 * (pods) that read the same path have different files and must not share an offset.
 */
export class OffsetStore {
  constructor(
    private readonly pool: pg.Pool,
    private readonly hostId: string,
    private readonly path: string,
  ) {}

  /**
   * Rows saved before offsets were keyed by file (migration 002 gives them an empty host id)
   * become this host's, so an upgrade resumes where it stopped rather than re-reading the file.
   */
  async adoptLegacy(): Promise<void> {
    await this.pool.query(
      `update access_log_offsets o set host_id = $1 where host_id = '' and path = $2
         and not exists (select 1 from access_log_offsets x where x.host_id = $1 and x.device = o.device and x.inode = o.inode)`,
      [this.hostId, this.path],
    );
  }

  /** The file being followed (the newest row without a rotation) and any renamed file pending. */
  async load(): Promise<{ active: FilePosition | undefined; rotating: RotatingFile[] }> {
    const r = await this.pool.query<{ device: string; inode: string; byte_offset: string; head: string; rotated_to: string | null }>(
      `select device, inode, byte_offset, head, rotated_to from access_log_offsets
        where host_id = $1 and path = $2 order by updated_at desc`,
      [this.hostId, this.path],
    );
    const toPos = (row: (typeof r.rows)[number]): FilePosition => ({ device: row.device, inode: row.inode, offset: Number(row.byte_offset), head: row.head });
    const activeRow = r.rows.find((row) => row.rotated_to === null);
    return {
      active: activeRow && toPos(activeRow),
      rotating: r.rows.filter((row) => row.rotated_to !== null).map((row) => ({ pos: toPos(row), rotatedTo: row.rotated_to! })),
    };
  }

  /** Saves how far a file was read; `rotatedTo` is where the sidecar renamed it (null: not renamed). */
  async save(pos: FilePosition, rotatedTo: string | null = null): Promise<void> {
    await this.pool.query(
      `insert into access_log_offsets (host_id, device, inode, path, byte_offset, head, rotated_to, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, now())
       on conflict (host_id, device, inode) do update set path = excluded.path, byte_offset = excluded.byte_offset,
         head = excluded.head, rotated_to = excluded.rotated_to, updated_at = now()`,
      [this.hostId, pos.device, pos.inode, this.path, pos.offset, pos.head, rotatedTo],
    );
  }

  /** Forgets a file that is read to its end and gone. */
  async forget(pos: Pick<FilePosition, 'device' | 'inode'>): Promise<void> {
    await this.pool.query('delete from access_log_offsets where host_id = $1 and device = $2 and inode = $3', [this.hostId, pos.device, pos.inode]);
  }
}
