// Issue 20's yardsticks, printed with every report: Envoy + Tollgate as a fraction of the same
// Envoy configuration behind an authorizer that costs nothing (the no-op setup, the limit an
// out-of-process authorizer can approach), and its tail latency against Envoy + OPA + ratelimit.

/** What the comparison reads of one setup's summary. */
interface SetupFigures {
  name: string;
  title: string;
  perSecond: number;
  p50: number;
  p99: number;
  p999: number;
}

/** One load shape of the run: saturating (`rate` undefined) or a fixed rate in req/s. */
export interface LoadFigures {
  rate: number | undefined;
  summary: SetupFigures[];
}

/** Envoy + Tollgate's throughput at saturation, as a fraction of the no-op setup's. */
const THROUGHPUT_TARGET = 0.75;

/** Parses --rate: a comma-separated list of loads, each `max` (saturate) or a rate in req/s. */
export function parseLoads(raw: string, max = 1_000_000): (number | undefined)[] | string {
  const loads: (number | undefined)[] = [];
  for (const part of raw.split(',').map((p) => p.trim())) {
    if (part === 'max') {
      loads.push(undefined);
      continue;
    }
    const n = Number(part);
    if (!Number.isInteger(n) || n < 1 || n > max) return `--rate: each entry must be "max" or a whole number from 1 to ${max} (got "${part}")`;
    loads.push(n);
  }
  if (new Set(loads).size !== loads.length) return `--rate: "${raw}" names a load twice`;
  return loads;
}

export const loadLabel = (rate: number | undefined, concurrency: number) =>
  rate ? `at a fixed ${rate} req/s over ${concurrency} connections` : `at ${concurrency} connections`;

const x = (a: number, b: number) => (b > 0 ? `${(a / b).toFixed(2)} ×` : '– ×');
const ms = (n: number) => `${n.toFixed(3)} ms`;

/** The lines that compare Envoy + Tollgate with the no-op setup and with OPA + ratelimit. */
export function limitReport(loads: readonly LoadFigures[], concurrency: number): string[] {
  const out = ['\nEnvoy + Tollgate against the limit (Envoy + no-op ext_authz) and against Envoy + OPA + ratelimit, this run:'];
  for (const load of loads) {
    const by = (name: string) => load.summary.find((s) => s.name === name);
    const tollgate = by('tollgate');
    const noop = by('noop');
    const opa = by('opa');
    const at = loadLabel(load.rate, concurrency);
    if (!tollgate) {
      out.push(`  ${at}: Envoy + Tollgate was not measured (--setups)`);
      continue;
    }
    if (noop) {
      const ratio = noop.perSecond > 0 ? tollgate.perSecond / noop.perSecond : 0;
      // At a fixed rate both carry the rate unless one falls behind: the ratio says whether it did.
      const verdict = load.rate
        ? '(a fixed rate: below 1 means Tollgate fell behind)'
        : `(target ≥ ${THROUGHPUT_TARGET}: ${ratio >= THROUGHPUT_TARGET ? 'met' : 'not met'})`;
      out.push(
        `  ${at}: throughput ${tollgate.perSecond.toFixed(0)} / ${noop.perSecond.toFixed(0)} req/s = ${x(tollgate.perSecond, noop.perSecond)} the no-op setup's ${verdict}`,
      );
      out.push(
        `  ${at}: latency against the no-op setup: p50 ${ms(tollgate.p50)} / ${ms(noop.p50)} = ${x(tollgate.p50, noop.p50)}, p99 ${ms(tollgate.p99)} / ${ms(noop.p99)} = ${x(tollgate.p99, noop.p99)}, p99.9 ${ms(tollgate.p999)} / ${ms(noop.p999)} = ${x(tollgate.p999, noop.p999)}`,
      );
    } else {
      out.push(`  ${at}: the no-op setup was not measured (--setups): no ratio to the limit`);
    }
    if (opa) {
      out.push(
        `  ${at}: p99.9 ${ms(tollgate.p999)} against Envoy + OPA + ratelimit's ${ms(opa.p999)} = ${x(tollgate.p999, opa.p999)} (target: at or below: ${tollgate.p999 <= opa.p999 ? 'met' : 'not met'})`,
      );
    } else {
      out.push(`  ${at}: Envoy + OPA + ratelimit was not measured (--setups): no p99.9 comparison`);
    }
  }
  return out;
}
