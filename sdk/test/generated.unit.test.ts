import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GENERATED_FILE, renderSdkTypes } from '../scripts/generate.js';

describe('the generated SDK types', () => {
  it('match the OpenAPI document authz-service serves now (run ./scripts/generate-sdk when this fails)', async () => {
    expect(readFileSync(GENERATED_FILE, 'utf8')).toBe(await renderSdkTypes());
  });
});
