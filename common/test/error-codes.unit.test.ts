import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../src/error-codes.js';

// docs/errors.md is ERROR_CODES as a table: the list is what the code may answer (deny() and
// HttpError take only its codes), the doc is what users read, so they must not drift apart.
const DOC = new URL('../../docs/errors.md', import.meta.url);
const START = '<!-- error-codes:start (generated from common/src/error-codes.ts; tested equal) -->';
const END = '<!-- error-codes:end -->';

/** The table as docs/errors.md must hold it, one row per code in the list's order. */
function expectedTable(): string {
  const rows = Object.entries(ERROR_CODES).map(
    ([code, info]) => `| \`${code}\` | ${info.status.join(', ')} | ${info.surfaces.join(', ')} | ${info.meaning} | ${info.action} |`,
  );
  return ['| `error` | Status | From | What it means | What to do |', '| --- | --- | --- | --- | --- |', ...rows].join('\n');
}

function documentedTable(): string {
  const text = readFileSync(DOC, 'utf8');
  const start = text.indexOf(START);
  const end = text.indexOf(END);
  expect(start, `docs/errors.md lacks the marker ${START}`).toBeGreaterThanOrEqual(0);
  expect(end, `docs/errors.md lacks the marker ${END}`).toBeGreaterThan(start);
  return text.slice(start + START.length, end).trim();
}

describe('error codes', () => {
  it('docs/errors.md lists exactly the codes in ERROR_CODES, with the same statuses and text', () => {
    // On failure the diff shows the table to paste between the markers.
    expect(documentedTable()).toBe(expectedTable());
  });

  it('every entry is fit for a table cell and names a real status', () => {
    for (const [code, info] of Object.entries(ERROR_CODES)) {
      expect(code).toMatch(/^[a-z][a-z_]*[a-z]$/);
      for (const text of [info.meaning, info.action]) expect(text, code).not.toMatch(/[|\n]/);
      expect(info.status.length, code).toBeGreaterThan(0);
      for (const s of info.status) expect(s >= 400 && s < 600, `${code}: ${s}`).toBe(true);
      expect(info.surfaces.length, code).toBeGreaterThan(0);
    }
  });
});
