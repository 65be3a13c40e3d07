import type { ApiKey } from '../domain/api-key.js';

/**
 * The providers whose operator credentials a key may use (the managed phase, docs/vault.md):
 * the key's `metadata.managed_providers`, which only an admin token sets (owner-field-policy.ts).
 * One effective list, read here only, so a plan's grant can be joined in later without touching
 * the injector.
 */
export function managedProvidersOf(key: ApiKey): readonly string[] {
  const granted = key.metadata['managed_providers'];
  if (!Array.isArray(granted)) return [];
  return granted.filter((p): p is string => typeof p === 'string').map((p) => p.toLowerCase());
}
