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

  it('envoy/envoy.yaml answers Envoy’s own refusals only with listed codes, each of them Envoy’s', () => {
    const config = readFileSync(new URL('../../envoy/envoy.yaml', import.meta.url), 'utf8');
    const section = config.slice(config.indexOf('local_reply_config:'), config.indexOf('route_config:', config.indexOf('local_reply_config:')));
    const codes = [...section.matchAll(/^\s+error: ([a-z_]+)$/gm)].map((m) => m[1]!);
    expect(codes.length).toBeGreaterThan(0);
    for (const code of codes) {
      const info = (ERROR_CODES as Record<string, { surfaces: readonly string[] }>)[code];
      expect(info, `${code} is not in ERROR_CODES`).toBeDefined();
      expect(info!.surfaces, code).toContain('envoy');
    }
    // Every code listed as Envoy's is one envoy.yaml answers with.
    const envoys = Object.entries(ERROR_CODES).filter(([, info]) => (info.surfaces as readonly string[]).includes('envoy'));
    expect(envoys.map(([code]) => code).sort()).toEqual([...new Set(codes)].sort());
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
