import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, chownSync, writeFileSync, symlinkSync, lstatSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { startProcess, waitFor, type ManagedProcess, type StartOptions } from './proc.js';
import type { Writable } from 'node:stream';

export const PG_SUPERUSER = 'tollgate';

/** The newest Debian PostgreSQL server binaries on this machine. */
export function findPostgresBin(): string {
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base)
    ? readdirSync(base)
        .filter((v) => existsSync(join(base, v, 'bin', 'postgres')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0) {
    throw new Error(
      'PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/postgres). ' +
        'Install the Debian package `postgresql`, or set DATABASE_URL to a running server.',
    );
  }
  return join(base, versions[0]!, 'bin');
}

/** Postgres refuses to run as root; as root we run it as Debian's `postgres` system user. */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    return { uid, gid };
  } catch {
    throw new Error('running as root and no `postgres` system user exists (install the Debian package `postgresql`)');
  }
}

function canUse(dir: string, ids: { uid: number; gid: number }): boolean {
  const r = spawnSync('test', ['-w', dir, '-a', '-x', dir], { uid: ids.uid, gid: ids.gid });
  return r.status === 0;
}

/**
 * Makes `dir` a directory the postgres user can own. When the repository sits under a path
 * that user cannot enter (a root home directory, say), the data lives in /var/tmp and `dir`
 * becomes a link to it.
 */
function prepareDataParent(dir: string, ids?: { uid: number; gid: number }): string {
  mkdirSync(dir, { recursive: true });
  if (!ids) return dir;
  chownSync(dir, ids.uid, ids.gid);
  if (canUse(dir, ids)) return dir;
  const alt = join('/var/tmp', `tollgate-pg-${createHash('sha256').update(resolve(dir)).digest('hex').slice(0, 12)}`);
  mkdirSync(alt, { recursive: true });
  chownSync(alt, ids.uid, ids.gid);
  const link = join(dir, 'data-link');
  if (!existsSync(link) && !lstatExists(link)) symlinkSync(alt, link);
  return alt;
}

function lstatExists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

export interface PostgresOptions {
  /** Folder for this server's data and socket (created if needed; reused if initialised). */
  dir: string;
  port: number;
  /** Test servers trade durability for speed; the dev stack keeps fsync on. */
  ephemeral?: boolean;
  output?: Writable;
  detached?: boolean;
  onSpawn?: StartOptions['onSpawn'];
}

export interface RunningPostgres {
  process: ManagedProcess;
  port: number;
  /** URL of the maintenance database `postgres`. */
  adminUrl: string;
  urlFor(database: string): string;
  dataDir: string;
}

export async function startPostgres(opts: PostgresOptions): Promise<RunningPostgres> {
  const bin = findPostgresBin();
  const ids = runAs();
  const parent = prepareDataParent(opts.dir, ids);
  const dataDir = join(parent, 'data');
  const socketDir = join(parent, 'socket');
  mkdirSync(socketDir, { recursive: true });
  if (ids) chownSync(socketDir, ids.uid, ids.gid);
  if (!existsSync(join(dataDir, 'PG_VERSION'))) {
    const init = spawnSync(
      join(bin, 'initdb'),
      ['-D', dataDir, '-U', PG_SUPERUSER, '-A', 'trust', '-E', 'UTF8', '--locale=C', ...(opts.ephemeral ? ['--no-sync'] : [])],
      { uid: ids?.uid, gid: ids?.gid, encoding: 'utf8' },
    );
    if (init.status !== 0) throw new Error(`initdb failed:\n${init.stderr || init.stdout}`);
    // Loopback only, trust auth: this server is a development/test fixture, never exposed.
    writeFileSync(join(dataDir, 'pg_hba.conf'), 'local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n');
    if (ids) chownSync(join(dataDir, 'pg_hba.conf'), ids.uid, ids.gid);
  }
  const args = [
    '-D',
    dataDir,
    '-p',
    String(opts.port),
    '-h',
    '127.0.0.1',
    '-k',
    socketDir,
    '-c',
    'max_connections=200',
    '-c',
    'shared_buffers=128MB',
    ...(opts.ephemeral ? ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'] : []),
  ];
  const proc = startProcess({
    name: 'postgres',
    command: join(bin, 'postgres'),
    args,
    uid: ids?.uid,
    gid: ids?.gid,
    output: opts.output,
    detached: opts.detached,
    onSpawn: opts.onSpawn,
  });
  const adminUrl = `postgres://${PG_SUPERUSER}@127.0.0.1:${opts.port}/postgres`;
  await waitFor(
    'postgres',
    async () => {
      const c = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 500 });
      try {
        await c.connect();
        await c.query('select 1');
        return true;
      } finally {
        await c.end().catch(() => {});
      }
    },
    { child: proc, timeoutMs: 30_000 },
  );
  return {
    process: proc,
    port: opts.port,
    adminUrl,
    urlFor: (db) => `postgres://${PG_SUPERUSER}@127.0.0.1:${opts.port}/${db}`,
    dataDir,
  };
}

/** Creates a database if absent (CREATE DATABASE has no IF NOT EXISTS). */
export async function ensureDatabase(adminUrl: string, name: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`unsafe database name ${name}`);
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    const r = await c.query('select 1 from pg_database where datname = $1', [name]);
    if (r.rowCount === 0) await c.query(`create database ${name}`);
  } finally {
    await c.end();
  }
}

export async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`unsafe database name ${name}`);
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    await c.query(`drop database if exists ${name} with (force)`);
  } finally {
    await c.end();
  }
}

/** Same server, another database: swaps the path of a Postgres URL. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}
