import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, env, loadConfig } from '../src/config.js';

const schema = z.object({
  REDIS_URL: env.url(['redis', 'rediss']),
  GRPC_PORT: env.port(9191),
  FAIL_OPEN: env.bool(false),
  ADMIN_TOKENS: env.list().optional(),
});

describe('loadConfig', () => {
  it('applies defaults and parses types', () => {
    const c = loadConfig(schema, { REDIS_URL: 'redis://127.0.0.1:6379', FAIL_OPEN: 'yes', ADMIN_TOKENS: 'a, b,,c' });
    expect(c).toEqual({ REDIS_URL: 'redis://127.0.0.1:6379', GRPC_PORT: 9191, FAIL_OPEN: true, ADMIN_TOKENS: ['a', 'b', 'c'] });
  });

  it('names every missing or invalid variable in one error', () => {
    let error: unknown;
    try {
      loadConfig(schema, { GRPC_PORT: '70000', FAIL_OPEN: 'maybe' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    expect(message).toMatch(/REDIS_URL/);
    expect(message).toMatch(/GRPC_PORT/);
    expect(message).toMatch(/FAIL_OPEN: must be true or false/);
  });

  it('rejects a URL with the wrong scheme, naming the variable', () => {
    expect(() => loadConfig(schema, { REDIS_URL: 'http://x' })).toThrow(/REDIS_URL: must be a URL with scheme redis or rediss/);
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig(schema, { REDIS_URL: 'redis://h', GRPC_PORT: '' }).GRPC_PORT).toBe(9191);
  });
});
