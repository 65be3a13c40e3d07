import { pathWithin } from './path-prefix.js';

/** One ROUTE_COSTS rule: requests under `prefix` weigh `cost` units. */
export interface RouteCostRule {
  prefix: string;
  cost: number;
}

/**
 * A request's weight: the first matching rule's cost, else 1. Matched as a restricting rule
 * (path-prefix.ts), so a different ASCII casing of a path cannot make a costly route cheap.
 */
export function routeCost(path: string, rules: readonly RouteCostRule[]): number {
  return rules.find((r) => pathWithin(path, r.prefix, 'restrict'))?.cost ?? 1;
}
