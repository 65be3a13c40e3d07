// Soak: a whole gateway of real processes under a fixed rate of mixed traffic for a long time,
// ending with an exact usage reconciliation. Exits non-zero on any mismatch or violation.
// Usage: pnpm soak [--minutes 10] [--rate 200]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { sleep } from '@tollgate/devstack';
import { COMPONENTS, Gateway, KeyIssuer, LoadRun, reconcile } from './src/index.js';

const { values: opts } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    rate: { type: 'string', default: '200' },
    'keep-dir': { type: 'boolean', default: false },
  },
});
const minutes = Number(opts.minutes);
const rate = Number(opts.rate);
if (!(minutes > 0) || !(rate > 0) || rate > 5000) {
  console.error('soak: --minutes must be > 0 and --rate between 1 and 5000');
  process.exit(2);
}

const dir = mkdtempSync(join(tmpdir(), 'tollgate-soak-'));
const gw = new Gateway({ dir, logLevel: 'warn' });
let exitCode = 1;
try {
  console.log(`soak: starting the gateway (logs in ${dir}/logs)`);
  await gw.start();
  const issuer = new KeyIssuer(gw.databaseUrl, gw.secrets.keyHashSecret);
  const valid = await Promise.all(Array.from({ length: 20 }, () => issuer.issue()));
  // 60 a minute, sent ~10% of 200/s: mostly 429s, a minute's allowance passing each minute.
  const limited = await Promise.all(Array.from({ length: 2 }, () => issuer.issue({ perMinute: 60 })));
  const rssStart = Object.fromEntries(COMPONENTS.map((c) => [c, Math.round(gw.rssMiB(c))]));

  console.log(`soak: ${minutes} min at ${rate} req/s (70% valid, 10% over-limit, 15% unknown, 5% malformed keys)`);
  const load = new LoadRun({
    url: gw.url,
    rate,
    mix: { valid: 70, limited: 10, unknown: 15, malformed: 5 },
    keys: { valid, limited },
    keepSamples: false,
  });
  const endAt = Date.now() + minutes * 60_000;
  while (Date.now() < endAt) {
    await sleep(Math.min(30_000, endAt - Date.now()));
    const c = load.counts;
    console.log(`soak: ${(load.now() / 1000).toFixed(0)} s sent ${c.sent} ${JSON.stringify(c.byKindStatus)}`);
    const crashed = gw.crashed();
    if (crashed.length) {
      console.error(`soak: crashed: ${JSON.stringify(crashed)}`);
      break;
    }
  }
  await load.stop();
  const elapsedS = load.now() / 1000;
  // Where 503s came from: Envoy's ext_authz errors (a Check not answered within 0.5 s, or not
  // reachable) versus Checks that answered 503 themselves (a dependency down).
  const envoyStats = await gw.envoyStats(
    /^http\.public\.ext_authz\.(error|ok|denied)$|^cluster\.authz\.(upstream_rq_retry|outlier_detection\.ejections_enforced_total|health_check\.failure)$/,
  );
  let checks503 = 0;
  for (const i of [0, 1] as const) {
    const text = await (await fetch(`${gw.authzHttpUrl(i)}/metrics`)).text();
    for (const m of text.matchAll(/^tollgate_authz_checks_total\{[^}]*status="503"[^}]*\} (\d+)/gm)) checks503 += Number(m[1]);
  }

  const pool = new pg.Pool({ connectionString: gw.databaseUrl, max: 2 });
  const keyIds = [...valid, ...limited].map((k) => k.id);
  const usage = await reconcile(pool, keyIds, load.counts.billable, { timeoutMs: 60_000, settleMs: 3_000 });
  const perKey = await pool.query<{ key_id: string; n: number }>(
    'select key_id, count(*)::int as n from usage_records where billable and key_id = any($1) group by key_id',
    [keyIds],
  );
  await pool.end();
  await issuer.close();
  const keyMismatches = perKey.rows.filter((r) => r.n !== (load.counts.billableByKey.get(r.key_id) ?? 0));
  const rssEnd = Object.fromEntries(COMPONENTS.map((c) => [c, Math.round(gw.rssMiB(c))]));
  const c = load.counts;
  const answered = Object.entries(c.byKindStatus)
    .filter(([k]) => !k.endsWith(':0'))
    .reduce((s, [, n]) => s + n, 0);
  const summary = {
    minutes,
    rate,
    elapsedS: +elapsedS.toFixed(1),
    sent: c.sent,
    answered,
    byKindStatus: c.byKindStatus,
    errors: c.errors,
    billableSeen: c.billable,
    usageBillable: usage.billable,
    usageRows: usage.rows,
    reconcileWaitMs: usage.waitedMs,
    keysWithMismatch: keyMismatches.length,
    invalidAllowed: c.invalidAllowed,
    unchecked: c.unchecked,
    validRefused: c.validRefused,
    envoyStats,
    checksAnswered503: checks503,
    crashed: gw.crashed().map((x) => x.name),
    rssMiBStart: rssStart,
    rssMiBEnd: rssEnd,
  };
  console.log(`soak: summary\n${JSON.stringify(summary, null, 2)}`);
  const problems: string[] = [];
  if (usage.billable !== c.billable) problems.push(`usage_records hold ${usage.billable} billable requests, clients saw ${c.billable}`);
  if (keyMismatches.length) problems.push(`${keyMismatches.length} keys' usage differs from what their clients saw`);
  if (c.invalidAllowed) problems.push(`${c.invalidAllowed} invalid keys allowed`);
  if (c.unchecked) problems.push(`${c.unchecked} allowed requests without the key's identity upstream`);
  if (c.validRefused) problems.push(`${c.validRefused} valid keys refused`);
  if (summary.crashed.length) problems.push(`crashed: ${summary.crashed.join(', ')}`);
  if (answered !== c.sent) problems.push(`${c.sent - answered} requests got no answer`);
  if (problems.length) {
    console.error(`soak: FAILED\n- ${problems.join('\n- ')}`);
  } else {
    console.log(`soak: OK — ${c.billable} billable requests seen, ${usage.billable} recorded`);
    exitCode = 0;
  }
} catch (err) {
  console.error(`soak: ${(err as Error).stack ?? err}`);
} finally {
  await gw.stop();
  if (!opts['keep-dir']) rmSync(dir, { recursive: true, force: true });
}
process.exit(exitCode);
