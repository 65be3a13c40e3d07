import { describe, expect, it } from 'vitest';
import { effectiveScopes, pathOnly, permissionSets, requiredScope, scopeAllows } from '../src/domain/scopes.js';
import { extractCredential } from '../src/domain/credentials.js';

describe('scopes', () => {
  const sets = permissionSets({ pipeline: ['read', 'write:/training/'] });

  it('maps methods to read/write unless a route rule says otherwise', () => {
    expect(requiredScope('GET', '/x')).toBe('read');
    expect(requiredScope('head', '/x')).toBe('read');
    expect(requiredScope('DELETE', '/x')).toBe('write');
    const rules = [{ prefix: '/admin/', scope: 'admin' }, { prefix: '/billing/', methods: ['POST'], scope: 'billing' }];
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

  it('matches on the path without its query string', () => {
    expect(pathOnly('/a/b?x=/admin/')).toBe('/a/b');
    expect(pathOnly('/a#frag')).toBe('/a');
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
