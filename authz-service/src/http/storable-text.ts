import { HttpError } from '@tollgate/common';

// Postgres refuses U+0000 in text and jsonb, and an unpaired UTF-16 surrogate has no UTF-8
// form; either would reach the database and fail there as a 500. Refused up front instead.
// biome-ignore lint/suspicious/noControlCharactersInRegex: U+0000 is what this looks for.
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Where, in `value`, the first string or object key Postgres cannot store is (e.g. `body.metadata.x`). */
function findUnstorableText(value: unknown, where: string, depth = 0): string | null {
  if (typeof value === 'string') return UNSTORABLE.test(value) ? where : null;
  // Bodies are at most 64 KiB; nesting this deep is refused by the schemas anyway.
  if (value === null || typeof value !== 'object' || depth > 64) return null;
  for (const [k, v] of Object.entries(value)) {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the key is shown with its control characters masked.
    if (UNSTORABLE.test(k)) return `${where}.${k.replace(/[\u0000-\u001f\uD800-\uDFFF]/g, '?')}`;
    const found = findUnstorableText(v, Array.isArray(value) ? `${where}[${k}]` : `${where}.${k}`, depth + 1);
    if (found) return found;
  }
  return null;
}

/** Throws 400 invalid_request naming the field when the body, query or path holds such text. */
export function assertStorableText(request: { body?: unknown; query?: unknown; params?: unknown }): void {
  const where = findUnstorableText(request.params, 'path') ?? findUnstorableText(request.query, 'query') ?? findUnstorableText(request.body, 'body');
  if (where) throw new HttpError(400, 'invalid_request', `${where}: text must not contain U+0000 or an unpaired UTF-16 surrogate`);
}
