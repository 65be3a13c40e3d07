import { describe, expect, it } from 'vitest';
import { effectiveScopes, limitScopes, permissionSets, requiredScope, scopeAllows, serviceRouteAllowed } from '../src/domain/scopes.js';
import { hasPathParameters, pathWithin } from '../src/domain/path-prefix.js';
import { tokenAllowsPath } from '../src/domain/service-token.js';
import { extractCredential } from '../src/domain/credentials.js';

describe('scopes', () => {
  const sets = permissionSets({ pipeline: ['read', 'write:/training/'] });

  it('maps methods to read/write unless a route rule says otherwise', () => {
    expect(requiredScope('GET', '/x')).toBe('read');
    expect(requiredScope('head', '/x')).toBe('read');
    expect(requiredScope('DELETE', '/x')).toBe('write');
    const rules = [
      { prefix: '/admin/', scope: 'admin' },
      { prefix: '/billing/', methods: ['POST'], scope: 'billing' },
    ];
    expect(requiredScope('GET', '/admin/users', rules)).toBe('admin');
    expect(requiredScope('POST', '/billing/charge', rules)).toBe('billing');
    expect(requiredScope('GET', '/billing/charge', rules)).toBe('read');
  });

  it('grants by exact scope, wildcard, or path-limited scope', () => {
    expect(scopeAllows(['*'], 'write', '/x')).toBe(true);
    expect(scopeAllows(['read'], 'read', '/x')).toBe(true);
    expect(scopeAllows(['read'], 'write', '/x')).toBe(false);
    expect(scopeAllows(['write'], 'read', '/x')).toBe(false);
    expect(scopeAllows(['write:/training/'], 'write', '/training/run')).toBe(true);
    expect(scopeAllows(['write:/training/'], 'write', '/trainingx')).toBe(false);
  });

  it('combines a permission set with the key’s own scopes; built-in sets cannot be redefined', () => {
    expect(effectiveScopes({ permissionSet: 'pipeline', scopes: ['keys:manage'] }, sets).sort()).toEqual(['keys:manage', 'read', 'write:/training/']);
    expect(permissionSets({ full_access: ['read'] }).full_access).toEqual(['*']);
    expect(effectiveScopes({ permissionSet: 'gone', scopes: [] }, sets)).toEqual([]);
  });

  it('a plan’s scopes limit a key’s to what both grant, keys:manage aside', () => {
    expect(limitScopes(['*'], ['read', 'write:/uploads/']).sort()).toEqual(['read', 'write:/uploads/']);
    expect(limitScopes(['read:/reports/', 'write'], ['read'])).toEqual(['read:/reports/']);
    expect(limitScopes(['read'], ['read:/reports/', 'admin'])).toEqual(['read:/reports/']);
    expect(limitScopes(['write:/a/b/'], ['write:/a/'])).toEqual(['write:/a/b/']);
    expect(limitScopes(['write:/ab/'], ['write:/a/'])).toEqual([]);
    expect(limitScopes(['keys:manage', 'read'], ['write'])).toEqual(['keys:manage']);
    // As at the Check, `*` grants no service_route: only the same grant in the plan keeps it.
    expect(limitScopes(['read', 'service_route:/internal/'], ['*'])).toEqual(['read']);
    expect(limitScopes(['service_route:/internal/'], ['service_route:/internal/'])).toEqual(['service_route:/internal/']);
  });
});

describe('path matching: one rule for every prefix', () => {
  it.each([
    ['/reports', '/reports', true],
    ['/reports/x', '/reports', true],
    ['/reports', '/reports/', true],
    ['/reports/x/y', '/reports/', true],
    ['/reports-admin', '/reports', false],
    ['/reports-admin', '/reports/', false],
    ['/reportsx/y', '/reports', false],
    ['/report', '/reports', false],
    ['/anything/at/all', '/', true],
  ])('%s under %s: %s', (path, prefix, expected) => {
    expect(pathWithin(path, prefix, 'grant')).toBe(expected);
    expect(pathWithin(path, prefix, 'restrict')).toBe(expected);
  });

  it('grants match the exact case; rules that restrict match any ASCII case', () => {
    expect(pathWithin('/Reports/x', '/reports', 'grant')).toBe(false);
    expect(pathWithin('/Reports/x', '/reports', 'restrict')).toBe(true);
    expect(pathWithin('/ADMIN', '/admin/', 'restrict')).toBe(true);
    // No Unicode folding: the Kelvin sign is not a K.
    expect(pathWithin('/\u212Aeys', '/keys', 'restrict')).toBe(false);
  });

  it('spots path parameters, raw or percent-encoded', () => {
    expect(hasPathParameters('/admin;x=1/users')).toBe(true);
    expect(hasPathParameters('/reports/..%3b/admin')).toBe(true);
    expect(hasPathParameters('/reports/..%3B/admin')).toBe(true);
    expect(hasPathParameters('/reports/2024')).toBe(false);
  });

  it('is the rule scopes, route scopes, token routes and service routes use', () => {
    expect(scopeAllows(['read:/reports'], 'read', '/reports-admin')).toBe(false);
    expect(scopeAllows(['read:/reports'], 'read', '/reports/2024')).toBe(true);
    expect(requiredScope('GET', '/administrator', [{ prefix: '/admin', scope: 'admin' }])).toBe('read');
    expect(requiredScope('GET', '/Admin/users', [{ prefix: '/admin', scope: 'admin' }])).toBe('admin');
    const claims = { project: 'captionacc', service: 'api', routes: ['/captionacc'] };
    expect(tokenAllowsPath(claims, '/captionacc/x', [])).toBe(true);
    expect(tokenAllowsPath(claims, '/captionacc-evil/x', [])).toBe(false);
    const everywhere = { ...claims, routes: ['/'] };
    expect(tokenAllowsPath(everywhere, '/captionacc/x', [{ prefix: '/captionacc/', project: 'other' }])).toBe(false);
    expect(tokenAllowsPath(everywhere, '/CAPTIONACC/x', [{ prefix: '/captionacc/', project: 'other' }])).toBe(false);
    expect(tokenAllowsPath(everywhere, '/captionacc-web/x', [{ prefix: '/captionacc', project: 'other' }])).toBe(true);
  });

  it('opens a service-token-only route to a key only with service_route:<prefix>, never with "*"', () => {
    const path = '/captionacc/prefect/api/health';
    expect(serviceRouteAllowed(['*'], path)).toBe(false);
    expect(serviceRouteAllowed(['service_route:/captionacc/prefect/api/'], path)).toBe(true);
    expect(serviceRouteAllowed(['service_route:/captionacc/prefect/api/'], '/captionacc/prefect/apix')).toBe(false);
    expect(serviceRouteAllowed(['service_route:/captionacc/prefect/api/'], '/CAPTIONACC/prefect/api/health')).toBe(false);
    expect(serviceRouteAllowed(['service_route'], path)).toBe(false);
  });
});

describe('credentials', () => {
  it('takes Bearer or X-API-Key, and refuses two different ones', () => {
    expect(extractCredential({ authorization: 'Bearer abc' })).toMatchObject({ ok: true, value: 'abc', source: 'authorization' });
    expect(extractCredential({ authorization: 'bearer   abc ' })).toMatchObject({ ok: true, value: 'abc' });
    expect(extractCredential({ 'x-api-key': 'abc' })).toMatchObject({ ok: true, source: 'x-api-key' });
    expect(extractCredential({ authorization: 'Bearer abc', 'x-api-key': 'abc' })).toMatchObject({ ok: true });
    expect(extractCredential({ authorization: 'Bearer abc', 'x-api-key': 'def' })).toMatchObject({ ok: false, reason: 'conflicting' });
    expect(extractCredential({ authorization: 'Basic abc' })).toMatchObject({ ok: false, reason: 'malformed' });
    expect(extractCredential({ authorization: 'Bearer a b' })).toMatchObject({ ok: false, reason: 'malformed' });
    expect(extractCredential({ 'x-api-key': 'a,b' })).toMatchObject({ ok: false, reason: 'malformed' });
    expect(extractCredential({})).toMatchObject({ ok: false, reason: 'missing' });
  });
});
