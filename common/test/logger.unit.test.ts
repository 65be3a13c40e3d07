import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, REDACTED } from '../src/logger.js';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString('utf8'));
      cb();
    },
  });
  return { lines, stream };
}

describe('createLogger redaction', () => {
  const secrets = {
    bearer: 'Bearer sk_4fJ2kLmN8pQrStUvWxYz0123456789ab_x1y2',
    apiKey: 'sk_secretApiKeyValue1234567890',
    provider: 'Bearer daily_providerSecret987',
    token: 'eyJhbGciOiJIUzI1NiJ9.payload.signature',
    admin: 'admin-token-very-secret',
  };

  it('never writes a key, token or provider secret, wherever it sits in the log object', () => {
    const { lines, stream } = capture();
    const logger = createLogger({ service: 'test', level: 'debug' }, stream);
    logger.info({ req: { headers: { authorization: secrets.bearer, 'x-api-key': secrets.apiKey, 'x-provider-auth': secrets.provider } } }, 'request');
    logger.info({ headers: { authorization: secrets.bearer, 'x-api-key': secrets.apiKey } }, 'check');
    logger.info({ key: secrets.apiKey, token: secrets.token, adminToken: secrets.admin }, 'top level');
    logger.info({ created: { key: secrets.apiKey, id: 'key_1' } }, 'nested');
    logger.info({ config: { ADMIN_TOKEN: secrets.admin, STRIPE_API_KEY: 'sk_test_stripe' } }, 'config');
    logger.info({ 'x-api-key': secrets.apiKey, 'x-provider-auth': secrets.provider }, 'header fields');
    const out = lines.join('');
    for (const s of Object.values(secrets)) expect(out).not.toContain(s);
    expect(out).not.toContain('sk_test_stripe');
    expect(out).toContain(REDACTED);
    // What is not secret still gets logged.
    expect(out).toContain('key_1');
  });
});
