import { z } from 'zod';
import { isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, env, loadConfig, serviceBasics } from '@tollgate/common';
import { isValidPrefix } from './domain/key-format.js';
import { permissionSets } from './domain/scopes.js';
import type { Plan } from './domain/plans.js';

// The workspace's console package, beside authz-service (from src/ and from a built dist/ alike).
const DEFAULT_CONSOLE_DIST_DIR = fileURLToPath(new URL('../../console/dist', import.meta.url));

const jsonOf = <T extends z.ZodType>(schema: T, what: string) =>
  z.string().transform((raw, ctx) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      ctx.addIssue({ code: 'custom', message: `must be JSON (${what})` });
      return z.NEVER;
    }
    const r = schema.safeParse(parsed);
    if (!r.success) {
      ctx.addIssue({ code: 'custom', message: `${what}: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'} ${i.message}`).join('; ')}` });
      return z.NEVER;
    }
    return r.data as z.output<T>;
  });

const scopeName = z.string().regex(/^[A-Za-z0-9_.:*/-]{1,128}$/, 'scope names use letters, digits and _ . : * / -');

/** PLANS entries (docs/billing.md, "Plans"): a Stripe price may buy one plan only, or a subscription would not say which. */
const plans = z
  .array(
    z
      .object({
        name: z.string().regex(/^[a-z][a-z0-9_-]{0,63}$/, 'plan names are a lower-case letter, then lower-case letters, digits, _ and -'),
        rate_limit_per_minute: z.number().int().min(1).max(1_000_000).nullable().default(null),
        rate_limit_per_day: z.number().int().min(1).max(1_000_000_000).nullable().default(null),
        monthly_quota: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).nullable().default(null),
        scopes: z.array(scopeName).min(1, 'list at least one scope, or leave scopes out (no limit)').optional(),
        stripe_price: z
          .string()
          .regex(/^price_[A-Za-z0-9_]{1,250}$/, 'Stripe price ids look like price_…')
          .optional(),
        stripe_lookup_key: z.string().min(1).max(200).optional(),
      })
      .strict()
      .refine((p) => p.stripe_price !== undefined || p.stripe_lookup_key !== undefined, 'each plan needs stripe_price or stripe_lookup_key'),
  )
  .superRefine((list, ctx) => {
    for (const field of ['name', 'stripe_price', 'stripe_lookup_key'] as const) {
      const seen = new Set<string>();
      list.forEach((p, i) => {
        const v = p[field];
        if (v === undefined) return;
        if (seen.has(v)) ctx.addIssue({ code: 'custom', path: [i, field], message: `"${v}" is in more than one plan` });
        seen.add(v);
      });
    }
  })
  .transform((list): Plan[] =>
    list.map((p) => ({
      name: p.name,
      rateLimitPerMinute: p.rate_limit_per_minute,
      rateLimitPerDay: p.rate_limit_per_day,
      monthlyQuota: p.monthly_quota,
      scopes: p.scopes ?? null,
      stripePrice: p.stripe_price ?? null,
      stripeLookupKey: p.stripe_lookup_key ?? null,
    })),
  );

const schema = z.object({
  ...serviceBasics('AUTHZ', { grpc: 9191, http: 8080 }),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(10),
  REDIS_URL: env.url(['redis', 'rediss']),
  /** Redis Cluster seed nodes (host:port, comma-separated); set, REDIS_URL supplies only credentials and TLS. */
  REDIS_CLUSTER_NODES: env
    .list()
    .pipe(
      z.array(
        z.string().transform((hp, ctx) => {
          const m = /^([^:\s]+):(\d{1,5})$/.exec(hp);
          if (!m || Number(m[2]) > 65535) {
            ctx.addIssue({ code: 'custom', message: `"${hp}" is not host:port` });
            return z.NEVER;
          }
          return { host: m[1]!, port: Number(m[2]) };
        }),
      ),
    )
    // "," is not "unset": it would start a cluster client with no seed node.
    .refine((nodes) => nodes.length > 0, 'at least one host:port')
    .optional(),
  REDIS_KEY_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_:.-]{0,64}$/, 'letters, digits and _ : . - only')
    .default('tollgate:'),

  /** HMAC secrets for key hashes, newest first; at least 32 characters each. */
  KEY_HASH_SECRETS: env.list().pipe(z.array(z.string().min(32, 'each secret needs at least 32 characters')).min(1, 'at least one secret')),
  KEY_PREFIX: z.string().refine(isValidPrefix, 'lower-case letter then up to 15 lower-case letters or digits').default('sk'),
  /** Prefixes still accepted at Check (a renamed prefix keeps old keys working). Defaults to KEY_PREFIX. */
  ACCEPTED_KEY_PREFIXES: env
    .list()
    .pipe(z.array(z.string().refine(isValidPrefix, 'invalid prefix')).min(1, 'at least one prefix'))
    .optional(),

  /** Admin token(s) for the management API; several at once so a token can rotate. */
  ADMIN_TOKEN: env.list().pipe(z.array(z.string().min(16, 'each admin token needs at least 16 characters')).min(1, 'at least one token')),

  /**
   * Signing secret(s) of the Stripe webhook endpoint (POST /webhooks/stripe); several at once so a
   * secret can rotate. Unset: the endpoint refuses every delivery.
   */
  STRIPE_WEBHOOK_SECRET: env
    .list()
    .pipe(z.array(z.string().regex(/^whsec_[A-Za-z0-9+/=_-]{8,}$/, 'each secret is a Stripe signing secret (whsec_…)')).min(1, 'at least one secret'))
    .optional(),

  /** Redis unreachable at Check: 'open' allows (and counts it in a metric), 'closed' answers 503. */
  RATE_LIMIT_FAILURE_MODE: z.enum(['open', 'closed']).default('open'),
  REDIS_COMMAND_TIMEOUT_MS: z.coerce.number().int().min(5).max(10_000).default(100),
  /** 'on': the rate-limit commands of one event-loop turn leave in one write (stores/redis-write-coalescer.ts). */
  REDIS_WRITE_COALESCING: z.enum(['on', 'off']).default('on'),

  KEY_CACHE_TTL_MS: env.durationMs(30_000),
  KEY_CACHE_MAX_ENTRIES: z.coerce.number().int().min(100).default(100_000),
  NEGATIVE_CACHE_TTL_MS: env.durationMs(5_000),
  /** Unknown keys remembered, in an LRU of their own: a flood of them never evicts known keys. */
  NEGATIVE_CACHE_MAX_ENTRIES: z.coerce.number().int().min(100).default(100_000),
  /**
   * While Postgres fails, how long past KEY_CACHE_TTL_MS a cached key, token or vault record is
   * still served (docs/authz.md, "Revocation guarantee"). An entry that a change invalidated is
   * never served stale. 0: no serve-stale at all.
   */
  KEY_CACHE_MAX_STALE_MS: env.durationMs(300_000).pipe(z.number().max(3_600_000, 'at most 3600000 (one hour)')),
  /** How often each replica checks the key-event sequence for changes it missed (at most 500, so revocation stays within a second). */
  KEY_EVENTS_POLL_MS: z.coerce.number().int().min(10).max(500).default(250),
  /**
   * 401s each client address may get per minute (a token bucket per address, per replica);
   * past it the address gets 429 `too_many_failed_attempts` and no key-store lookups, while
   * keys in the cache still work (docs/authz.md, "Refusal limit"). 0: off.
   */
  UNAUTHENTICATED_REFUSALS_PER_MINUTE_PER_ADDRESS: z.coerce.number().int().min(0).max(1_000_000).default(120),
  USAGE_FLUSH_INTERVAL_MS: z.coerce.number().int().min(100).default(1_000),

  /** Applied to keys created without limits; unset means unlimited. */
  DEFAULT_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().positive().optional(),
  DEFAULT_RATE_LIMIT_PER_DAY: z.coerce.number().int().positive().optional(),

  /**
   * Plans, JSON: [{"name":"pro","rate_limit_per_minute":600,"rate_limit_per_day":100000,"monthly_quota":1000000,
   * "scopes":["read","write"],"stripe_price":"price_…","stripe_lookup_key":"pro_monthly"}] (docs/billing.md, "Plans").
   */
  PLANS: jsonOf(plans, 'plans').default([]),

  /** Custom permission sets, JSON: {"name": ["scope", ...]}; read_only and full_access always exist. */
  PERMISSION_SETS: jsonOf(z.record(z.string().regex(/^[a-z][a-z0-9_]{0,63}$/), z.array(scopeName)), 'permission sets').optional(),
  DEFAULT_PERMISSION_SET: z.string().default('full_access'),
  /** Route rules, JSON: [{"prefix": "/admin/", "methods": ["POST"], "scope": "admin"}]; first match wins. */
  ROUTE_SCOPES: jsonOf(
    z.array(z.object({ prefix: z.string().startsWith('/'), methods: z.array(z.string().toUpperCase()).optional(), scope: scopeName }).strict()),
    'route scopes',
  ).optional(),

  /** Route weights, JSON: [{"prefix": "/v1/reports/", "cost": 5}]; first match wins, else 1 (docs/billing.md, "Route costs"). */
  ROUTE_COSTS: jsonOf(
    z.array(z.object({ prefix: z.string().startsWith('/'), cost: z.number().int().min(1).max(1_000_000) }).strict()),
    'route costs',
  ).optional(),

  /**
   * Service-token signing secrets (seed 001), newest first, each `kid:secret` (or a bare secret,
   * whose kid is "default"). Unset: service tokens are off.
   */
  GATEWAY_JWT_SECRET: env
    .list()
    .pipe(
      z
        .array(
          z.string().transform((entry, ctx) => {
            const i = entry.indexOf(':');
            const [kid, secret] = i > 0 && i < 64 ? [entry.slice(0, i), entry.slice(i + 1)] : ['default', entry];
            if (!/^[A-Za-z0-9_.-]{1,63}$/.test(kid)) ctx.addIssue({ code: 'custom', message: 'key id must be letters, digits, _ . -' });
            if (secret.length < 32) ctx.addIssue({ code: 'custom', message: 'each secret needs at least 32 characters' });
            return { kid, secret };
          }),
        )
        .min(1)
        .refine((list) => new Set(list.map((s) => s.kid)).size === list.length, 'key ids must be unique'),
    )
    .optional(),
  GATEWAY_JWT_ISSUER: z.string().min(1).default('tollgate'),
  /** Leeway for exp/nbf/iat, in seconds, for clocks that drift. */
  GATEWAY_JWT_CLOCK_TOLERANCE_S: z.coerce.number().int().min(0).max(300).default(30),
  /**
   * Route rules for service tokens, JSON: [{"prefix":"/captionacc/prefect/api/","project":"captionacc","services":["api"]}].
   * Paths under these prefixes are for service tokens only: API keys get 403 there unless they
   * hold `service_route:<prefix>`. The default guards the internal route envoy/envoy.yaml ships;
   * `[]` opens it to API keys.
   */
  SERVICE_TOKEN_ROUTES: jsonOf(
    z.array(z.object({ prefix: z.string().startsWith('/'), project: z.string().min(1), services: z.array(z.string().min(1)).min(1).optional() }).strict()),
    'service token routes',
  ).default([{ prefix: '/captionacc/prefect/api/', project: 'captionacc' }]),

  /**
   * Provider-key vault master keys (seed 002), newest first, each `id:<base64 of 32 bytes>`.
   * Unset: the vault is off. `openssl rand -base64 32` makes one.
   */
  VAULT_MASTER_KEYS: env
    .list()
    .pipe(
      z
        .array(
          z.string().transform((entry, ctx) => {
            const i = entry.indexOf(':');
            const id = i > 0 ? entry.slice(0, i) : '';
            const key = Buffer.from(i > 0 ? entry.slice(i + 1) : '', 'base64');
            if (!/^[A-Za-z0-9_.-]{1,63}$/.test(id)) ctx.addIssue({ code: 'custom', message: 'each entry is id:<base64 key>; id is letters, digits, _ . -' });
            if (key.length !== 32) ctx.addIssue({ code: 'custom', message: 'each master key must be 32 bytes, base64-encoded' });
            return { id, key };
          }),
        )
        .min(1)
        .refine((list) => new Set(list.map((k) => k.id)).size === list.length, 'master key ids must be unique'),
    )
    .optional(),
  /**
   * Routes whose upstream needs a provider credential, JSON:
   * [{"prefix":"/api/rooms/","default_provider":"daily","required":true}]. Outside them nothing is injected.
   */
  PROVIDER_ROUTES: jsonOf(
    z.array(
      z
        .object({
          prefix: z.string().startsWith('/'),
          default_provider: z
            .string()
            .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/)
            .transform((p) => p.toLowerCase())
            .optional(),
          required: z.boolean().default(true),
        })
        .strict(),
    ),
    'provider routes',
  ).optional(),
  /** Provider when the client sends no X-Provider and the route names none (seed 000: "daily"). */
  DEFAULT_PROVIDER: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/)
    .transform((p) => p.toLowerCase())
    .optional(),
  /** Bring your own key: may clients pass their own X-Provider-Auth? A key's metadata.byok (true/false) overrides. */
  PROVIDER_BYOK: z.enum(['allow', 'deny']).default('allow'),
  /**
   * Development mode (seed 002's local mode): every PROVIDER_KEY_<NAME> variable is an operator
   * credential for provider <name>, used by keys granted that provider (metadata.managed_providers).
   * Refused when NODE_ENV=production: secrets in the environment are for one developer's laptop.
   */
  PROVIDER_CREDENTIALS_FROM_ENV: env.bool(false),
  /**
   * Upstream statuses that mean the provider rejected an operator credential (docs/vault.md,
   * "Rejected operator credentials"): a request served with it and answered so takes it out of
   * rotation until it is rotated. Comma-separated codes from 400 to 599.
   */
  OPERATOR_CREDENTIAL_REJECT_STATUSES: env
    .list()
    .pipe(
      z
        .array(
          z
            .string()
            .regex(/^[45]\d\d$/, 'status codes from 400 to 599, comma-separated')
            .transform(Number),
        )
        .min(1, 'name at least one status code (turn the check off with OPERATOR_CREDENTIAL_HEALTH_INTERVAL_MS=0)'),
    )
    .default([401, 403]),
  /** How often the upstream's answers per operator credential are read (from billing's usage tables); 0 turns it off. */
  OPERATOR_CREDENTIAL_HEALTH_INTERVAL_MS: env.durationMs(5_000),

  /** How often expired Idempotency-Key records (older than 24 h) are purged; 0 turns the sweep off. */
  IDEMPOTENCY_SWEEP_INTERVAL_MS: env.durationMs(600_000),

  /** How long a rotated key's previous secret keeps working. */
  ROTATION_GRACE_SECONDS: z.coerce
    .number()
    .int()
    .min(0)
    .max(30 * 86_400)
    .default(86_400),

  /**
   * The built console (console/dist) served at /console/; absolute, so the service finds it from
   * any working directory. Missing at start is allowed: /console/ then answers 503 until it is built.
   */
  CONSOLE_DIST_DIR: z.string().refine(isAbsolute, 'an absolute path').default(DEFAULT_CONSOLE_DIST_DIR),

  /**
   * Outbound webhooks (docs/webhooks.md). Deliveries to loopback, private, link-local and other
   * non-public addresses are refused unless this is on: a webhook URL is operator input that the
   * service fetches, so by default it cannot be pointed at the service's own network.
   */
  WEBHOOK_ALLOW_PRIVATE_TARGETS: env.bool(false),
  /** Attempts per delivery before it is parked as failed (POST /api/webhook-deliveries/:id/retry replays it). */
  WEBHOOK_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(12),
  /** The first retry's delay; each further retry doubles it (full jitter), up to WEBHOOK_RETRY_MAX_MS. */
  WEBHOOK_RETRY_BASE_MS: z.coerce.number().int().min(10).max(3_600_000).default(10_000),
  WEBHOOK_RETRY_MAX_MS: z.coerce
    .number()
    .int()
    .min(10)
    .max(86_400_000)
    .default(6 * 3_600_000),
  /** How long one delivery attempt may take (connect to last byte) before it counts as failed. */
  WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(10_000),
  /** How often each replica looks for deliveries that are due; 0 turns delivery off on this replica. */
  WEBHOOK_POLL_INTERVAL_MS: env.durationMs(1_000),
  /** How often expiring keys and tokens and quota thresholds are looked for; 0 turns the scan off on this replica. */
  WEBHOOK_SCAN_INTERVAL_MS: env.durationMs(60_000),

  /** A console session ends after this long unused (docs/management-api.md, "Console sessions"). */
  SESSION_IDLE_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(1000)
    .default(30 * 60_000),
  /** A console session ends this long after sign-in, however busy. */
  SESSION_MAX_AGE_MS: z.coerce
    .number()
    .int()
    .min(1000)
    .default(12 * 3_600_000),
  /** Failed console sign-ins one client address may make per minute (per replica) before 429. */
  SESSION_SIGNIN_FAILURES_PER_MINUTE: z.coerce.number().int().min(1).max(1_000_000).default(10),
});

// The default set must be one the service knows: otherwise every key created without scopes fails.
const checked = schema.superRefine((config, ctx) => {
  if (config.WEBHOOK_RETRY_MAX_MS < config.WEBHOOK_RETRY_BASE_MS) {
    ctx.addIssue({ code: 'custom', path: ['WEBHOOK_RETRY_MAX_MS'], message: 'must be at least WEBHOOK_RETRY_BASE_MS' });
  }
  const sets = permissionSets(config.PERMISSION_SETS);
  if (!sets[config.DEFAULT_PERMISSION_SET]) {
    ctx.addIssue({
      code: 'custom',
      path: ['DEFAULT_PERMISSION_SET'],
      message: `"${config.DEFAULT_PERMISSION_SET}" is not a permission set (known: ${Object.keys(sets).join(', ')})`,
    });
  }
});

/** An operator credential read from PROVIDER_KEY_<NAME> (development mode only). */
export interface EnvOperatorCredential {
  provider: string;
  secret: string;
}

export type AuthzConfig = z.output<typeof schema> & { ENV_OPERATOR_CREDENTIALS: EnvOperatorCredential[] };

const PROVIDER_KEY_VAR = /^PROVIDER_KEY_([A-Za-z0-9][A-Za-z0-9_]{0,31})$/;

export function loadAuthzConfig(source: NodeJS.ProcessEnv = process.env): AuthzConfig {
  const config = loadConfig(checked, source);
  if (!config.PROVIDER_CREDENTIALS_FROM_ENV) return { ...config, ENV_OPERATOR_CREDENTIALS: [] };
  if (source['NODE_ENV'] === 'production') {
    throw new ConfigError([
      { variable: 'PROVIDER_CREDENTIALS_FROM_ENV', problem: 'is refused when NODE_ENV=production: store operator credentials in the vault instead' },
    ]);
  }
  const creds: EnvOperatorCredential[] = [];
  for (const [name, value] of Object.entries(source)) {
    const m = PROVIDER_KEY_VAR.exec(name);
    if (m && value) creds.push({ provider: m[1]!.toLowerCase(), secret: value });
  }
  return { ...config, ENV_OPERATOR_CREDENTIALS: creds.sort((a, b) => a.provider.localeCompare(b.provider)) };
}
