import { describe, expect, it } from 'vitest';
import { pathOnly } from '../src/request-path.js';

describe('pathOnly', () => {
  it('drops the query string and the fragment, whichever comes first', () => {
    expect(pathOnly('/a/b?x=/admin/')).toBe('/a/b');
    expect(pathOnly('/a#frag')).toBe('/a');
    expect(pathOnly('/x?y#z')).toBe('/x');
    expect(pathOnly('/x#y?z')).toBe('/x');
  });

  it('keeps a path without either as it is, and leaves an empty path empty', () => {
    expect(pathOnly('/a/b;c')).toBe('/a/b;c');
    expect(pathOnly('?only')).toBe('');
    expect(pathOnly('')).toBe('');
  });
});
