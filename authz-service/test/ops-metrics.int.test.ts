import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import YAML from 'yaml';
import { REPO_ROOT, TestStack } from '@tollgate/devstack';
import type { BillingSidecar } from '../../billing-sidecar/src/index.js';
import { stackBillingSidecar } from './billing-helpers.js';
import { createKey, metricValue, stackAuthz, stackEnv, startEnvoyFront, type EnvoyFront, type TestAuthz } from './helpers.js';

// Every metric the Grafana dashboard (deploy/grafana) or an alert (deploy/prometheus) names is
// exported by a service of the running stack: a real Envoy, authz-service and billing-sidecar,
// after a little traffic. A renamed metric would otherwise leave a panel empty or an alert silent.
const infra = inject('infra');
let authz: TestAuthz;
let billing: BillingSidecar;
let front: EnvoyFront;
const stack = new TestStack();

/** Named by a dashboard or an alert before the feature that exports them lands, and why. */
const LATER: Record<string, string> = {};

beforeAll(async () => {
  const env = await stackEnv(stack, infra, 'ops_metrics');
  authz = await stackAuthz(stack, env);
  billing = await stackBillingSidecar(stack, env);
  front = await startEnvoyFront(stack, authz.grpcPort, { alsPort: billing.grpcPort });
});

afterAll(() => stack.stop());

const exprsOf = {
  dashboard: () =>
    (JSON.parse(readFileSync(join(REPO_ROOT, 'deploy', 'grafana', 'tollgate.json'), 'utf8')) as { panels: { targets: { expr: string }[] }[] }).panels.flatMap(
      (p) => p.targets.map((t) => t.expr),
    ),
  alerts: () =>
    (
      YAML.parse(readFileSync(join(REPO_ROOT, 'deploy', 'prometheus', 'tollgate-rules.yaml'), 'utf8')) as { groups: { rules: { expr: string }[] }[] }
    ).groups.flatMap((g) => g.rules.map((r) => r.expr)),
};
/** Tollgate's metric names in PromQL (`up` is Prometheus' own). */
const metricNames = (exprs: string[]) => new Set(exprs.flatMap((e) => e.match(/\btollgate_[a-z0-9_]+\b/g) ?? []));

/** What a /metrics page declares (# TYPE), with a histogram's _bucket, _sum and _count series. */
async function exported(url: string): Promise<Set<string>> {
  const text = await (await fetch(url)).text();
  const names = new Set<string>();
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(name!);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(`${name}${s}`);
  }
  return names;
}

describe('metrics named by the dashboard and the alerts', () => {
  it('are all exported by the running stack (or listed as arriving later, with the reason)', async () => {
    const { plaintext } = await createKey(authz, { userId: 'ops-user' });
    for (const credential of [plaintext, plaintext, 'sk_unknown']) await fetch(`${front.url}/hello`, { headers: { 'x-api-key': credential } });
    const services = [`http://127.0.0.1:${authz.httpPort}/metrics`, `http://127.0.0.1:${billing.httpPort}/metrics`];
    const have = new Set((await Promise.all(services.map(exported))).flatMap((s) => [...s]));
    for (const [source, exprs] of Object.entries(exprsOf)) {
      const named = metricNames(exprs());
      expect(named.size, `${source} names no metric`).toBeGreaterThan(5);
      const missing = [...named].filter((n) => !have.has(n) && !LATER[n]);
      expect(missing, `${source} names metrics no service exports`).toEqual([]);
    }
    // An entry in LATER that is exported already is stale.
    expect(Object.keys(LATER).filter((n) => have.has(n))).toEqual([]);
  });

  it('tollgate_authz_credentials_expiring counts active keys expiring within 7 days', async () => {
    const before = await metricValue(authz, 'tollgate_authz_credentials_expiring', { kind: 'api_key' });
    await createKey(authz, { expiresAt: new Date(Date.now() + 3 * 86_400_000) });
    await createKey(authz, { expiresAt: new Date(Date.now() + 30 * 86_400_000) });
    expect(await metricValue(authz, 'tollgate_authz_credentials_expiring', { kind: 'api_key' })).toBe(before + 1);
  });
});
