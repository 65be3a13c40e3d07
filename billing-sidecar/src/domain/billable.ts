/**
 * Which logged requests are billed. Every request with a key identity is recorded; the rule
 * only decides the `billable` flag of requests the gateway let through (its own refusals are
 * never billable, whatever their status: usage-record.ts). The default (`429,5xx`) bills what
 * the upstream answered except server failures and rate-limit refusals.
 */
export interface BillableRule {
  /** Exact status codes that are not billable. */
  codes: ReadonlySet<number>;
  /** Status classes (the hundreds digit: 5 for 5xx) that are not billable. */
  classes: ReadonlySet<number>;
  /** The rule as configured, for logs and docs. */
  text: string;
}

export function parseBillableRule(text: string): BillableRule {
  const codes = new Set<number>();
  const classes = new Set<number>();
  for (const raw of text
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean)) {
    const cls = /^([1-5])xx$/.exec(raw);
    if (cls) {
      classes.add(Number(cls[1]));
    } else if (/^[1-5]\d\d$/.test(raw)) {
      codes.add(Number(raw));
    } else {
      throw new Error(`"${raw}" is neither a status code (429) nor a status class (5xx)`);
    }
  }
  return { codes, classes, text };
}

export const DEFAULT_BILLABLE_RULE = parseBillableRule('429,5xx');

export function isBillable(rule: BillableRule, status: number): boolean {
  // Status 0 means Envoy never got a response (client reset, upstream unreachable): not billed.
  if (status < 100) return false;
  return !rule.codes.has(status) && !rule.classes.has(Math.floor(status / 100));
}
