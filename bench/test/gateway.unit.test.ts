import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { altOpaData, altRatelimitConfig, renderAltEnvoyConfig } from '../src/alt-stack.js';
import { ohaArgs, parseOha } from '../src/oha.js';
import { limitReport, parseLoads } from '../src/targets.js';

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

describe('the loads one run measures', () => {
  it('reads saturating and fixed-rate loads, in the order given', () => {
    expect(parseLoads('max,1000')).toEqual([undefined, 1000]);
    expect(parseLoads('2000')).toEqual([2000]);
  });

  it('refuses anything else, naming the entry', () => {
    expect(parseLoads('max,fast')).toContain('"fast"');
    expect(parseLoads('0')).toContain('"0"');
    expect(parseLoads('1000,1000')).toContain('twice');
  });
});

describe('Tollgate against the limit', () => {
  const setup = (name: string, perSecond: number, p999: number) => ({ name, title: name, perSecond, p50: 1, p99: 2, p999 });

  it('gives the throughput ratio to the no-op setup at saturation and the p99.9 against OPA + ratelimit', () => {
    const lines = limitReport([{ rate: undefined, summary: [setup('noop', 8000, 10), setup('tollgate', 4000, 30), setup('opa', 3000, 20)] }], 32);
    const text = lines.join('\n');
    expect(text).toContain("at 32 connections: throughput 4000 / 8000 req/s = 0.50 × the no-op setup's (target ≥ 0.75: not met)");
    expect(text).toContain('p99.9 30.000 ms / 10.000 ms = 3.00 ×');
    expect(text).toContain("against Envoy + OPA + ratelimit's 20.000 ms = 1.50 × (target: at or below: not met)");
  });

  it('at a fixed rate, compares the tail and says a throughput ratio below 1 means falling behind', () => {
    const text = limitReport([{ rate: 1000, summary: [setup('noop', 1000, 4), setup('tollgate', 1000, 5), setup('opa', 1000, 6)] }], 32).join('\n');
    expect(text).toContain('at a fixed 1000 req/s over 32 connections: throughput 1000 / 1000 req/s = 1.00 ×');
    expect(text).toContain('fell behind');
    expect(text).toContain('(target: at or below: met)');
  });

  it('says which comparison a run without the no-op or OPA setup cannot make', () => {
    const text = limitReport([{ rate: undefined, summary: [setup('tollgate', 4000, 30)] }], 32).join('\n');
    expect(text).toContain('the no-op setup was not measured');
    expect(text).toContain('no p99.9 comparison');
  });
});
