import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { altOpaData, altRatelimitConfig, renderAltEnvoyConfig } from '../src/alt-stack.js';
import { ohaArgs, parseOha } from '../src/oha.js';
import { cpusFor, parseCpuList, parseScale, scaleRows } from '../src/scale.js';
import { limitReport, parseLoads, targetsReport } from '../src/targets.js';

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

describe('the Targets block', () => {
  const setup = (name: string, perSecond: number, p999: number, cpu: Record<string, number> = {}) => ({
    name,
    title: name,
    perSecond,
    p50: 1,
    p99: 2,
    p999,
    cpuPerRequestUs: cpu,
  });

  it('gives each of the four targets its measured value, its bar and met or missed', () => {
    const text = targetsReport(
      [
        {
          rate: undefined,
          summary: [
            setup('alone', 16000, 5, { envoy: 100 }),
            setup('noop', 4000, 10),
            setup('tollgate', 3200, 30, { 'authz-service': 120, redis: 30 }),
            setup('opa', 1500, 40, { redis: 26 }),
          ],
        },
        { rate: 1000, summary: [setup('noop', 1000, 4), setup('tollgate', 1000, 9), setup('opa', 1000, 6)] },
      ],
      32,
    ).join('\n');
    expect(text).toContain("[met]    throughput ≥ 0.75 × Envoy + no-op ext_authz's at 32 connections: 0.80 × (3200 / 4000 req/s)");
    expect(text).toContain("[met]    p99.9 ≤ Envoy + OPA + ratelimit's at 32 connections: 30.000 ms against 40.000 ms");
    expect(text).toContain("[missed] p99.9 ≤ Envoy + OPA + ratelimit's at a fixed 1000 req/s over 32 connections: 9.000 ms against 6.000 ms");
    // The bar scales with this run's Envoy alone: 148 / 57 / 2 × 100 µs = 130 µs.
    expect(text).toMatch(/\[met\] +authz-service CPU per Check .*: 120 µs against 130 µs \(Envoy alone 100 µs\)/);
    expect(text).toMatch(/\[missed\] Redis CPU per request .*: 30 µs against 26 µs/);
  });

  it('says which target a run cannot judge, and why', () => {
    const text = targetsReport([{ rate: 1000, summary: [setup('tollgate', 1000, 9)] }], 8).join('\n');
    expect(text).toContain(
      "[not measured] throughput ≥ 0.75 × Envoy + no-op ext_authz's at 8 connections (the target is set at 32): no saturating load in --rate",
    );
    expect(text).toContain('needs the tollgate and opa setups');
    expect(text).not.toContain('[met]');
  });
});

describe('scaling over authz-service processes', () => {
  it('takes process counts, ascending, and refuses repeats and zero', () => {
    expect(parseScale('2,1')).toEqual([1, 2]);
    expect(parseScale('1,1')).toMatch(/twice/);
    expect(parseScale('0,2')).toMatch(/from 1 to 8/);
    expect(parseScale('')).toMatch(/got ""/);
  });

  it('pins processes to the CPUs listed, round-robin, and refuses CPUs the machine lacks', () => {
    const list = parseCpuList('0,1', 2);
    expect(list).toEqual(['0', '1']);
    expect([0, 1, 2].map((i) => cpusFor(i, list as string[]))).toEqual(['0', '1', '0']);
    expect(cpusFor(0, null)).toBeNull();
    expect(parseCpuList('0-1', 2)).toEqual(['0-1']);
    expect(parseCpuList('2', 2)).toMatch(/from 0 to 1/);
    expect(parseCpuList('1-0', 2)).toMatch(/got "1-0"/);
  });

  it('shows each process count as a multiple of the fewest', () => {
    const point = (processes: number, perSecond: number) => ({
      processes,
      perSecond,
      perSecondRange: [perSecond - 10, perSecond + 10],
      p99: 20,
      authzCpuPct: 60,
      authzUsPerRequest: 150,
      machineBusyPct: 90,
    });
    expect(scaleRows([point(1, 2000), point(2, 2600)]).map((r) => r[3])).toEqual(['1.00', '1.30']);
  });
});
