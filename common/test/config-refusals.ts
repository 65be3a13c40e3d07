import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { ConfigError } from '../src/config.js';

// Table-driven tests of a service's configuration schema: every row is one bad value of one
// variable, refused with problems that name that variable and no other. The completeness test
// reads the schema's keys, so a variable added without rows (or a declared "accepts anything")
// fails until the table says how it is refused.

export interface Refusal {
  variable: string;
  /** undefined: the variable is unset. */
  value: string | undefined;
  /** What the problem text must say. */
  problem: RegExp;
}

export interface Accepted {
  variable: string;
  value: string;
  parsed: unknown;
}

export const refused = (variable: string, value: string | undefined, problem: RegExp): Refusal => ({ variable, value, problem });

export const required = (variable: string): Refusal => refused(variable, undefined, /expected string, received undefined/);

/** An integer in [min, max] (max omitted: unbounded): refused when not a number, not whole, or outside. */
export function intRange(variable: string, min: number, max?: number): { refusals: Refusal[]; accepted: Accepted[] } {
  const refusals = [
    refused(variable, 'abc', /expected number, received NaN/),
    refused(variable, `${min}.5`, /expected int/),
    refused(variable, String(min - 1), /Too small/),
    refused(variable, ' ', /is only white space/),
  ];
  const accepted = [{ variable, value: String(min), parsed: min }];
  if (max !== undefined) {
    refusals.push(refused(variable, String(max + 1), /Too big/));
    accepted.push({ variable, value: String(max), parsed: max });
  }
  return { refusals, accepted };
}

export const oneOf = (variable: string, bad: string): Refusal => refused(variable, bad, /Invalid option: expected one of/);

export const url = (variable: string, schemes: string[]): Refusal[] => {
  const problem = new RegExp(`must be a URL with scheme ${schemes.join(' or ')}`);
  return [refused(variable, 'not a url', problem), refused(variable, 'ftp://127.0.0.1/x', problem)];
};

function catchConfigError(load: () => unknown): ConfigError {
  try {
    load();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected the configuration to be refused, and it was accepted');
}

export function describeConfigRefusals(spec: {
  service: string;
  load: (env: NodeJS.ProcessEnv) => unknown;
  /** The schema loadConfig was given (captured from the call). */
  schema: () => z.ZodObject | undefined;
  /** The smallest environment that loads: the required variables, valid. */
  base: Record<string, string>;
  refusals: Refusal[];
  accepted: Accepted[];
  /** Variables config.ts takes as any non-empty string, each with the reason it may. */
  unvalidated: Record<string, string>;
}): void {
  const envWith = (variable: string, value: string | undefined): NodeJS.ProcessEnv => {
    const env: NodeJS.ProcessEnv = { ...spec.base, [variable]: value };
    if (value === undefined) delete env[variable];
    return env;
  };

  describe(`${spec.service} configuration refusals`, () => {
    it('loads the base environment (so every refusal below is the row’s doing)', () => {
      expect(() => spec.load(spec.base)).not.toThrow();
    });

    it.each(spec.refusals.map((r) => [r.variable, r.value === undefined ? '(unset)' : JSON.stringify(r.value), r] as const))(
      '%s=%s is refused, naming the variable',
      (_, __, r) => {
        const err = catchConfigError(() => spec.load(envWith(r.variable, r.value)));
        // One bad value may break two rules of its variable (an entry with neither id nor key), never another variable.
        expect(err.problems.map((p) => p.variable)).toEqual(err.problems.map(() => r.variable));
        expect(err.problems).toContainEqual({ variable: r.variable, problem: expect.stringMatching(r.problem) });
        expect(err.message).toContain(`\n  ${r.variable}: `);
      },
    );

    it.each(spec.accepted.map((a) => [a.variable, a.value, a] as const))('%s=%s (a bound) is accepted', (_, __, a) => {
      expect((spec.load(envWith(a.variable, a.value)) as Record<string, unknown>)[a.variable]).toEqual(a.parsed);
    });

    it.each(Object.entries(spec.unvalidated))('%s takes any value (%s)', (variable) => {
      for (const value of ['x', '-1', '{', 'a b,c', 'ftp://x']) expect(() => spec.load(envWith(variable, value))).not.toThrow();
    });

    it('has a row (or a reason to take anything) for every variable in the schema, and none for others', () => {
      spec.load(spec.base);
      const schema = spec.schema();
      expect(schema, 'the schema passed to loadConfig was not captured').toBeDefined();
      const keys = Object.keys(schema!.shape);
      const covered = new Set([...spec.refusals.map((r) => r.variable), ...Object.keys(spec.unvalidated)]);
      expect(
        keys.filter((k) => !covered.has(k)),
        'variables without a refusal row',
      ).toEqual([]);
      expect(
        [...covered].filter((k) => !keys.includes(k)),
        'rows for variables the schema does not have',
      ).toEqual([]);
    });
  });
}
