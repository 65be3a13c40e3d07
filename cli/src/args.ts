import { InvalidArgumentError } from 'commander';

export function integer(min: number, max: number) {
  return (raw: string): number => {
    if (!/^-?\d+$/.test(raw)) throw new InvalidArgumentError('expected a whole number');
    const n = Number(raw);
    if (n < min || n > max) throw new InvalidArgumentError(`expected ${min} to ${max}`);
    return n;
  };
}

export const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

/** Drops options the user did not give, so the API changes only what was asked. */
export function defined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}
