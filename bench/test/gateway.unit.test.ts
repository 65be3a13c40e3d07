import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { altOpaData, altRatelimitConfig, renderAltEnvoyConfig } from '../src/alt-stack.js';
import { ohaArgs, parseOha } from '../src/oha.js';

describe('reading oha', () => {
  it('counts 2xx as served and everything else, transport errors included, as errors', () => {
    const r = parseOha({
      summary: { total: 2 },
      latencyPercentiles: { p50: 0.0012, p99: 0.004, 'p99.9': 0.0071 },
      statusCodeDistribution: { '200': 1000, '429': 3, '503': 2 },
      errorDistribution: { 'connection reset': 1 },
    });
    expect(r).toMatchObject({ ok: 1000, errors: 6, perSecond: 500, latencyMs: { p50: 1.2, p99: 4, 'p99.9': 7.1 } });
    expect(r.errorKinds).toEqual({ 'HTTP 429': 3, 'HTTP 503': 2, 'connection reset': 1 });
  });
});

describe("oha's command line", () => {
  const base = { url: 'http://127.0.0.1:1/hello', headers: { authorization: 'Bearer k' }, seconds: 5, concurrency: 8 };

  it('keeps the connections busy for the time given when no rate is set', () => {
    const args = ohaArgs(base);
    expect(args).toEqual(expect.arrayContaining(['-z', '5s', '-c', '8', '-H', 'authorization: Bearer k']));
    expect(args).not.toContain('-q');
    expect(args.at(-1)).toBe(base.url);
  });

  it('at a fixed rate, measures each request from when it was due (no coordinated omission)', () => {
    const args = ohaArgs({ ...base, rate: 2000 });
    expect(args[args.indexOf('-q') + 1]).toBe('2000');
    expect(args).toContain('--latency-correction');
  });
});

describe('the alternative stack', () => {
  const ep = (port: number) => ({ host: '127.0.0.1', port });
  const config = YAML.parse(renderAltEnvoyConfig({ listen: ep(1), adminPort: 2, backend: ep(3), opa: ep(4), ratelimit: ep(5) }));
  const hcm = config.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;

  it('checks with OPA, bounds the body, rate-limits, then routes, with no access-log leg', () => {
    expect(hcm.http_filters.map((f: { name: string }) => f.name)).toEqual([
      'envoy.filters.http.ext_authz',
      // Tollgate's envoy.yaml limits bodies after ext_authz; the alternative keeps that, so
      // both setups carry the same filters apart from how they authorize and limit.
      'envoy.filters.http.buffer',
      'envoy.filters.http.ratelimit',
      'envoy.filters.http.router',
    ]);
    const authz = config.static_resources.clusters.find((c: { name: string }) => c.name === 'authz');
    expect(authz.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value).toBe(4);
    expect(JSON.stringify(hcm.access_log ?? [])).not.toContain('http_grpc');
  });

  it('builds per-key descriptors from the identity header clients cannot send themselves', () => {
    const mutations = JSON.stringify(hcm.early_header_mutation_extensions);
    expect(mutations).toContain('x-api-key-id');
    // The catch-all that routes (the optional HTTPS redirect before it matches '/' too).
    const route = hcm.route_config.virtual_hosts[0].routes.find((r: { match: { prefix?: string }; route?: unknown }) => r.match.prefix === '/' && r.route);
    expect(route.route.rate_limits).toHaveLength(2);
    expect(JSON.stringify(route.route.rate_limits)).toContain('"header_name":"x-api-key-id"');
  });

  it('gives OPA hashes only, and ratelimit a minute and a day limit per key', () => {
    const data = altOpaData([{ id: 'key_1', userId: 'u', plaintext: 'sk_secret', hash: 'ab12' }], 's'.repeat(32));
    expect(JSON.stringify(data)).not.toContain('sk_secret');
    expect(data.tollgate_bench.keys.ab12).toEqual({ id: 'key_1', user_id: 'u' });
    const rl = YAML.parse(altRatelimitConfig({ perMinute: 10, perDay: 100 }));
    expect(rl.descriptors).toEqual([
      { key: 'api_key_minute', rate_limit: { unit: 'minute', requests_per_unit: 10 } },
      { key: 'api_key_day', rate_limit: { unit: 'day', requests_per_unit: 100 } },
    ]);
  });
});
