import type { Logger } from '@tollgate/common';
import type pg from 'pg';
import type { Envelope } from '../vault/envelope.js';
import { type RewrapCounts, rewrapTable } from '../vault/rewrap.js';
import { WebhookEndpointStore } from './endpoint-store.js';

/**
 * Moves every endpoint's signing secret (and a previous one still in its grace) to the newest
 * master key, as part of POST /api/vault/rewrap. Expired previous secrets are dropped first, so
 * after a clean rewrap no webhook row needs a retired master key.
 */
export async function rewrapWebhookSecrets(pool: pg.Pool, envelope: Envelope, logger: Logger, batchSize = 200): Promise<RewrapCounts> {
  const store = new WebhookEndpointStore(pool);
  await store.dropExpiredPreviousSecrets();
  return rewrapTable(
    envelope,
    {
      what: 'webhook signing secret',
      notUnder: (masterKeyId, limit) => store.sealsNotUnder(masterKeyId, limit),
      rewrap: (e, seal) => e.rewrapWebhook(seal.sealed, seal.id),
      replaceSeal: (seal, next) => store.replaceSeal(seal, next),
      identify: (seal) => ({ webhookEndpointId: seal.id, secret: seal.slot }),
    },
    logger,
    batchSize,
  );
}
