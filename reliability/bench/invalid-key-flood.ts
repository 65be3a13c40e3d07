// Abuse bound: latency of valid keys through Envoy alone, then while a flood of invalid keys
// hits the same Envoy — malformed keys (bad checksum), then well-formed keys nobody issued
// (valid checksums, as an attacker who knows the format would send). Prints valid-key
// percentiles per phase and the Postgres key lookups each flood caused.
// Usage: pnpm bench:flood [--seconds 10] [--valid-rate 50] [--flood-rate 500]
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
  },
});
const seconds = Number(opts.seconds);
const validRate = Number(opts['valid-rate']);
const floodRate = Number(opts['flood-rate']);

const dir = mkdtempSync(join(tmpdir(), 'tollgate-flood-'));
const gw = new Gateway({ dir, logLevel: 'warn' });

async function keyLookups(): Promise<number> {
  let total = 0;
  for (const i of [0, 1] as const) {
    const text = await (await fetch(`${gw.authzHttpUrl(i)}/metrics`)).text();
    total += Number(/^tollgate_authz_key_lookups_total(?:\{[^}]*\})? (\d+)/m.exec(text)?.[1] ?? 0);
  }
  return total;
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
    await sleep(seconds * 1000);
    await Promise.all([validLoad.stop(), flood?.stop()]);
    const lookups = (await keyLookups()) - lookupsBefore;
    const lat = percentiles(validLoad.samples.filter((s) => s.status === 200).map((s) => (s.doneAt - s.at) * 1e6), [50, 90, 99]);
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
    });
  }
  console.log(`\ninvalid-key flood: ${seconds} s per phase, valid keys at ${validRate}/s, flood at ${floodRate}/s, through Envoy with two authz-service replicas`);
  console.table(rows);
} finally {
  await gw.stop();
  rmSync(dir, { recursive: true, force: true });
}
