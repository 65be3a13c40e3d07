import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// Every variable a service reads at start is documented in .env.example: operators configure
// Tollgate from that file, so a variable missing there is a setting nobody can find.
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CONFIGS = ['authz-service/src/config.ts', 'billing-sidecar/src/config.ts', 'backend-hello/src/config.ts'];

describe('.env.example', () => {
  it('names every variable the services’ configuration schemas read', () => {
    const example = readFileSync(join(root, '.env.example'), 'utf8');
    const missing: string[] = [];
    for (const file of CONFIGS) {
      const source = readFileSync(join(root, file), 'utf8');
      const names = [...source.matchAll(/^\s+([A-Z][A-Z0-9_]+):/gm)].map((m) => m[1]!);
      expect(names.length, `${file} declares no variables`).toBeGreaterThan(2);
      for (const name of names) if (!new RegExp(`\\b${name}=`).test(example)) missing.push(`${name} (${file})`);
    }
    expect(missing).toEqual([]);
  });
});
