import { describe, expect, it } from 'vitest';
import { createTollgateClient } from '../src/index.js';

/** A fetch that records each request and answers `body`. */
function recordingFetch(body: unknown, status = 200) {
  const seen: Request[] = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
    seen.push(input instanceof Request ? input : new Request(input, init));
    return new Response(status === 204 ? null : JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
  };
  return { seen, fetch: fetch as typeof globalThis.fetch };
}

describe('createTollgateClient', () => {
  it('sends the token as a bearer credential to the documented path', async () => {
    const f = recordingFetch({ object: 'list', data: [], has_more: false, next_cursor: null });
    const client = createTollgateClient({ baseUrl: 'http://127.0.0.1:8080', token: 'admin-token-123456', fetch: f.fetch });
    const { data, error } = await client.GET('/api/keys', { params: { query: { user_id: 'u1' } } });
    expect(error).toBeUndefined();
    expect(data).toMatchObject({ object: 'list' });
    expect(f.seen[0]!.url).toBe('http://127.0.0.1:8080/api/keys?user_id=u1');
    expect(f.seen[0]!.headers.get('authorization')).toBe('Bearer admin-token-123456');
    expect(f.seen[0]!.headers.get('x-csrf-token')).toBeNull();
  });

  it('adds X-CSRF-Token to state-changing calls only, reading a function per call', async () => {
    const f = recordingFetch({}, 200);
    let csrf = 'first';
    const client = createTollgateClient({ baseUrl: 'http://127.0.0.1:8080', fetch: f.fetch, csrfToken: () => csrf });
    await client.GET('/api/keys/by-id/{id}', { params: { path: { id: 'k1' } } });
    await client.POST('/api/keys/{id}/revoke', { params: { path: { id: 'k1' } }, body: {} });
    csrf = 'second';
    await client.DELETE('/api/keys/{id}', { params: { path: { id: 'k1' } } });
    expect(f.seen.map((r) => [r.method, r.headers.get('x-csrf-token'), r.headers.get('authorization')])).toEqual([
      ['GET', null, null],
      ['POST', 'first', null],
      ['DELETE', 'second', null],
    ]);
  });
});
