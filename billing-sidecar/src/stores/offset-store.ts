import type pg from 'pg';

/** Which file (device + inode) the offset belongs to, so a rotated file is never misread. */
export interface FilePosition {
  device: string;
  inode: string;
  offset: number;
}

export async function loadPosition(pool: pg.Pool, path: string): Promise<FilePosition | undefined> {
  const r = await pool.query<{ device: string; inode: string; byte_offset: string }>(
    'select device, inode, byte_offset from access_log_offsets where path = $1',
    [path],
  );
  const row = r.rows[0];
  return row ? { device: row.device, inode: row.inode, offset: Number(row.byte_offset) } : undefined;
}

export async function savePosition(pool: pg.Pool, path: string, pos: FilePosition): Promise<void> {
  await pool.query(
    `insert into access_log_offsets (path, device, inode, byte_offset, updated_at) values ($1, $2, $3, $4, now())
     on conflict (path) do update set device = excluded.device, inode = excluded.inode,
       byte_offset = excluded.byte_offset, updated_at = now()`,
    [path, pos.device, pos.inode, pos.offset],
  );
}
