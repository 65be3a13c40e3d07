import type pg from 'pg';

/** Which file (device + inode) the offset belongs to, so a rotated file is never misread. */
export interface FilePosition {
  device: string;
  inode: string;
  offset: number;
  /** Up to HEAD_BYTES of the file's start, base64, as read when the offset was saved. */
  head: string;
}

export const HEAD_BYTES = 128;

export async function loadPosition(pool: pg.Pool, path: string): Promise<FilePosition | undefined> {
  const r = await pool.query<{ device: string; inode: string; byte_offset: string; head: string }>(
    'select device, inode, byte_offset, head from access_log_offsets where path = $1',
    [path],
  );
  const row = r.rows[0];
  return row ? { device: row.device, inode: row.inode, offset: Number(row.byte_offset), head: row.head } : undefined;
}

export async function savePosition(pool: pg.Pool, path: string, pos: FilePosition): Promise<void> {
  await pool.query(
    `insert into access_log_offsets (path, device, inode, byte_offset, head, updated_at) values ($1, $2, $3, $4, $5, now())
     on conflict (path) do update set device = excluded.device, inode = excluded.inode,
       byte_offset = excluded.byte_offset, head = excluded.head, updated_at = now()`,
    [path, pos.device, pos.inode, pos.offset, pos.head],
  );
}
