import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createLogger } from '@tollgate/common';
import { freePort, validateEnvoyConfig } from '@tollgate/devstack';
import { buildBackend } from '@tollgate/backend-hello';
import { KeyHasher, generateKey } from '@tollgate/authz-service';
import { renderAltEnvoyConfig, startAltStack, type RunningAltStack } from '../src/alt-stack.js';
import { findBenchTool } from '../src/tools.js';
import type { BenchKey } from '../src/keys.js';

// Setup (c) of the gateway benchmark must be a working gateway, or its figures mean nothing:
// Envoy accepts the generated configuration, OPA admits known keys only, and envoyproxy/ratelimit
// really limits per key.
const infra = inject('infra');
const dir = mkdtempSync(join(tmpdir(), 'tollgate-alt-stack-'));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the alternative stack', () => {
  it('has an Envoy configuration the real Envoy validates', () => {
    const path = join(dir, 'alt-envoy.yaml');
    const ep = (port: number) => ({ host: '127.0.0.1', port });
    writeFileSync(path, renderAltEnvoyConfig({ listen: ep(18000), adminPort: 18001, backend: ep(18002), opa: ep(18003), ratelimit: ep(18004) }));
    const r = validateEnvoyConfig(path);
    expect(r.output).toContain('OK');
    expect(r.ok).toBe(true);
  });

  // ./scripts/test installs both tools (a few minutes once, from a cold Go cache); without them
  // this fails, saying what is missing, rather than skipping.
  describe('with opa-envoy-plugin and ratelimit running', () => {
    beforeAll(() => {
      for (const tool of ['opa-envoy-plugin', 'ratelimit'] as const) {
        if (!findBenchTool(tool)) throw new Error(`${tool} is not installed: ./scripts/test (or pnpm bench:gateway) installs it into .tools/bin`);
      }
    });
    const backend = buildBackend(createLogger({ service: 'backend-hello', level: 'silent' }));
    const hashSecret = randomBytes(32).toString('hex');
    const hasher = new KeyHasher([hashSecret]);
    const keys: BenchKey[] = ['a', 'b'].map((s) => {
      const k = generateKey('sk');
      return { id: `key_test_${s}_${randomBytes(4).toString('hex')}`, userId: `user_${s}`, plaintext: k.plaintext, hash: hasher.primary(k.plaintext) };
    });
    let alt: RunningAltStack;
    const get = (headers: Record<string, string> = {}) => fetch(`${alt.envoy.url}/echo`, { headers });

    beforeAll(async () => {
      const port = await freePort();
      await backend.listen({ host: '127.0.0.1', port });
      alt = await startAltStack({
        dir: join(dir, 'stack'),
        backend: { host: '127.0.0.1', port },
        redisUrl: infra.redisUrl,
        keys,
        hashSecret,
        // A per-day limit runs out within the test; a per-minute one could reset mid-test at a
        // minute boundary.
        limits: { perMinute: 1000, perDay: 3 },
      });
    });
    afterAll(async () => {
      await alt?.stop();
      await backend.close();
    });

    it('admits a known key, passing its identity upstream instead of the key', async () => {
      const res = await get({ authorization: `Bearer ${keys[0]!.plaintext}`, 'x-api-key-id': 'forged' });
      expect(res.status).toBe(200);
      const echoed = await res.json();
      expect(echoed.headers['x-api-key-id']).toBe(keys[0]!.id);
      expect(echoed.headers['x-user-id']).toBe('user_a');
      expect(echoed.headers.authorization).toBeUndefined();
      expect(res.headers.get('x-ratelimit-limit')).toBeTruthy();
    });

    it('refuses an unknown key, and a request without one', async () => {
      const unknown = generateKey('sk').plaintext;
      expect((await get({ authorization: `Bearer ${unknown}` })).status).toBe(401);
      expect((await get({ 'x-api-key': unknown })).status).toBe(401);
      expect((await get()).status).toBe(401);
    });

    it('limits each key separately', async () => {
      const b = { 'x-api-key': keys[1]!.plaintext };
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await get(b)).status);
      expect(statuses).toEqual([200, 200, 200, 429]);
      // Key a used one of its three in the first test; it is not affected by b's exhaustion.
      expect((await get({ authorization: `Bearer ${keys[0]!.plaintext}` })).status).toBe(200);
    });
  });
});
