// Abuse bound: latency of valid keys through Envoy alone, then while a flood of invalid keys
// hits the same Envoy — malformed keys (bad checksum), then well-formed keys nobody issued
// (valid checksums, as an attacker who knows the format would send). Prints valid-key
// percentiles per phase, the Postgres key lookups each flood caused, and what the replicas' key
// caches hold after it (known keys must survive any number of unknown ones).
// Usage: pnpm bench:flood [--seconds 10] [--valid-rate 50] [--flood-rate 500] [--unknown-keys N]
// --unknown-keys: the unknown-key phase lasts until N distinct unknown keys were sent (N /
// flood-rate seconds) instead of --seconds; e.g. --unknown-keys 200000 --flood-rate 2000.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { percentiles, sleep } from '@tollgate/devstack';
import { Gateway, KeyIssuer, LoadRun, type Kind } from '../src/index.js';

const { values: opts } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    'valid-rate': { type: 'string', default: '50' },
    'flood-rate': { type: 'string', default: '500' },
    'unknown-keys': { type: 'string' },
  },
});
const seconds = Number(opts.seconds);
const validRate = Number(opts['valid-rate']);
const floodRate = Number(opts['flood-rate']);
const unknownKeys = opts['unknown-keys'] === undefined ? null : Number(opts['unknown-keys']);
for (const [name, v] of Object.entries({ seconds, 'valid-rate': validRate, 'flood-rate': floodRate, 'unknown-keys': unknownKeys ?? 1 })) {
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
}

const dir = mkdtempSync(join(tmpdir(), 'tollgate-flood-'));
const gw = new Gateway({ dir, logLevel: 'warn' });

async function metricsText(i: 0 | 1): Promise<string> {
  return (await fetch(`${gw.authzHttpUrl(i)}/metrics`)).text();
}

function metric(text: string, name: string, labels = ''): number {
  const re = new RegExp(`^${name}${labels ? `\\{[^}]*${labels}[^}]*\\}` : '(?:\\{[^}]*\\})?'} (\\d+)`, 'm');
  return Number(re.exec(text)?.[1] ?? 0);
}

async function keyLookups(): Promise<number> {
  let total = 0;
  for (const i of [0, 1] as const) total += metric(await metricsText(i), 'tollgate_authz_key_lookups_total');
  return total;
}

/** Entries in each replica's key cache: found keys / unknown hashes. */
async function cacheEntries(): Promise<string> {
  const parts: string[] = [];
  for (const i of [0, 1] as const) {
    const text = await metricsText(i);
    parts.push(`${metric(text, 'tollgate_authz_key_cache_entries', 'kind="found"')}/${metric(text, 'tollgate_authz_key_cache_entries', 'kind="unknown"')}`);
  }
  return parts.join(', ');
}

try {
  await gw.start();
  const issuer = new KeyIssuer(gw.databaseUrl, gw.secrets.keyHashSecret);
  const valid = await Promise.all(Array.from({ length: 10 }, () => issuer.issue()));
  await issuer.close();
  const keys = { valid, limited: [] };

  // Warm both replicas' caches and the JIT.
  const warm = new LoadRun({ url: gw.url, rate: 100, mix: { valid: 1 }, keys });
  await sleep(3_000);
  await warm.stop();

  const phases: { name: string; flood: Kind | null }[] = [
    { name: 'valid keys alone', flood: null },
    { name: 'with a flood of malformed keys', flood: 'malformed' },
    { name: 'with a flood of unknown well-formed keys', flood: 'unknown' },
  ];
  const rows: Record<string, unknown>[] = [];
  for (const phase of phases) {
    const lookupsBefore = await keyLookups();
    const validLoad = new LoadRun({ url: gw.url, rate: validRate, mix: { valid: 1 }, keys });
    const flood = phase.flood ? new LoadRun({ url: gw.url, rate: floodRate, mix: { [phase.flood]: 1 }, keys }) : null;
    const phaseSeconds = phase.flood === 'unknown' && unknownKeys !== null ? unknownKeys / floodRate : seconds;
    await sleep(phaseSeconds * 1000);
    await Promise.all([validLoad.stop(), flood?.stop()]);
    const lookups = (await keyLookups()) - lookupsBefore;
    const lat = percentiles(
      validLoad.samples.filter((s) => s.status === 200).map((s) => (s.doneAt - s.at) * 1e6),
      [50, 90, 99],
    );
    rows.push({
      phase: phase.name,
      'valid sent': validLoad.counts.sent,
      'valid 200': validLoad.counts.byKindStatus['valid:200'] ?? 0,
      'valid p50 ms': lat.p50,
      'valid p90 ms': lat.p90,
      'valid p99 ms': lat.p99,
      'flood sent': flood?.counts.sent ?? 0,
      'flood answers': flood ? JSON.stringify(flood.counts.byKindStatus) : '',
      'flood allowed': flood?.counts.invalidAllowed ?? 0,
      'postgres key lookups': lookups,
      'cache found/unknown (replica 1, 2)': await cacheEntries(),
    });
  }
  const unknownPhase = unknownKeys === null ? '' : ` (the unknown-key phase: ${unknownKeys} distinct keys, ${unknownKeys / floodRate} s)`;
  console.log(
    `\ninvalid-key flood: ${seconds} s per phase${unknownPhase}, valid keys at ${validRate}/s, flood at ${floodRate}/s, through Envoy with two authz-service replicas`,
  );
  console.table(rows);
} finally {
  await gw.stop();
  rmSync(dir, { recursive: true, force: true });
}
