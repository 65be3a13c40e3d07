import { describe, expect, it } from 'vitest';
import { ConfigError } from '@tollgate/common';
import { loadAuthzConfig } from '../src/config.js';

const base = {
  DATABASE_URL: 'postgres://tollgate@127.0.0.1:5432/tollgate',
  REDIS_URL: 'redis://127.0.0.1:6379',
  KEY_HASH_SECRETS: 's'.repeat(32),
  ADMIN_TOKEN: 'a'.repeat(16),
};

// Seed 002's local mode: PROVIDER_KEY_<NAME> as operator credentials, never in production.
describe('PROVIDER_CREDENTIALS_FROM_ENV', () => {
  it('reads PROVIDER_KEY_<NAME> as operator credentials for provider <name>', () => {
    const c = loadAuthzConfig({
      ...base,
      PROVIDER_CREDENTIALS_FROM_ENV: 'true',
      PROVIDER_KEY_OPENAI: 'sk-dev-1',
      PROVIDER_KEY_DAILY: 'd-dev',
      PROVIDER_KEY_EMPTY: '',
    });
    expect(c.ENV_OPERATOR_CREDENTIALS).toEqual([
      { provider: 'daily', secret: 'd-dev' },
      { provider: 'openai', secret: 'sk-dev-1' },
    ]);
  });

  it('ignores PROVIDER_KEY_* unless turned on', () => {
    expect(loadAuthzConfig({ ...base, PROVIDER_KEY_OPENAI: 'sk-dev-1' }).ENV_OPERATOR_CREDENTIALS).toEqual([]);
  });

  it('is refused when NODE_ENV=production, naming the variable and not the secret', () => {
    let err: unknown;
    try {
      loadAuthzConfig({ ...base, NODE_ENV: 'production', PROVIDER_CREDENTIALS_FROM_ENV: 'true', PROVIDER_KEY_OPENAI: 'sk-dev-secret' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/PROVIDER_CREDENTIALS_FROM_ENV.*NODE_ENV=production/);
    expect((err as Error).message).not.toContain('sk-dev-secret');
  });
});
