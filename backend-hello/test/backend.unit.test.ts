import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '@tollgate/common';
import { buildBackend } from '../src/server.js';

const app = buildBackend(createLogger({ service: 'backend-hello', level: 'silent' }));
afterAll(() => app.close());

describe('backend-hello', () => {
  it('greets the caller by the identity the gateway attached', async () => {
    const res = await app.inject({
      url: '/hello',
      headers: { 'x-user-id': 'user123', 'x-api-key-id': 'key_abc', 'x-api-key-scopes': 'read write' },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      message: 'Hello, user123!',
      user_id: 'user123',
      api_key_id: 'key_abc',
      scopes: ['read', 'write'],
    });
  });

  it('greets an anonymous caller when no identity is attached', async () => {
    const res = await app.inject({ url: '/hello' });
    expect(res.json().message).toBe('Hello, anonymous!');
  });

  it('echoes method, path, query, headers and body for any method', async () => {
    const res = await app.inject({
      method: 'PATCH',
      url: '/echo/sub?x=1&y=two',
      headers: { 'content-type': 'application/json', 'x-custom': 'v' },
      payload: '{"a":1}',
    });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ method: 'PATCH', path: '/echo/sub', query: { x: '1', y: 'two' }, body: '{"a":1}' });
    expect(body.headers['x-custom']).toBe('v');
  });

  it('answers /health', async () => {
    const res = await app.inject({ url: '/health' });
    expect(res.statusCode).toBe(200);
    expect(res.json().status).toBe('ok');
  });
});
