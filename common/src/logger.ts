import { pino, type Logger, type LoggerOptions, type DestinationStream } from 'pino';

export type { Logger } from 'pino';

/**
 * Every place a key, token or provider secret can appear in a log object. Pino's redaction
 * paths match exact keys (no regex), so headers are listed in the case Node and Envoy use
 * (lower case) at each nesting depth our services log.
 */
const SECRET_FIELDS = [
  'authorization',
  'x-api-key',
  'x-provider-auth',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'key',
  'apiKey',
  'api_key',
  'plaintext',
  'token',
  'accessToken',
  'refreshToken',
  'secret',
  'password',
  'adminToken',
  'admin_token',
  'providerKey',
  'provider_key',
  'stripeApiKey',
  'STRIPE_API_KEY',
  'ADMIN_TOKEN',
  'KEY_HASH_SECRETS',
  'GATEWAY_JWT_SECRET',
  'VAULT_MASTER_KEYS',
  'DATABASE_URL',
  'REDIS_URL',
  'databaseUrl',
  'redisUrl',
];

function bracket(field: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(field) ? `.${field}` : `["${field}"]`;
}

export const REDACT_PATHS: string[] = (() => {
  const paths = new Set<string>();
  for (const f of SECRET_FIELDS) {
    const b = bracket(f);
    paths.add(b.slice(b.startsWith('.') ? 1 : 0));
    paths.add(`*${b}`);
    paths.add(`*.*${b}`);
    paths.add(`req.headers${b}`);
    paths.add(`request.headers${b}`);
    paths.add(`res.headers${b}`);
    paths.add(`headers${b}`);
    paths.add(`config${b}`);
  }
  return [...paths];
})();

export const REDACTED = '[redacted]';

export interface LoggerSettings {
  service: string;
  level?: LoggerOptions['level'];
}

/** The one way services make a logger, so redaction can never be forgotten. */
export function createLogger(settings: LoggerSettings, destination?: DestinationStream): Logger {
  const options: LoggerOptions = {
    name: settings.service,
    level: settings.level ?? 'info',
    redact: { paths: REDACT_PATHS, censor: REDACTED },
    base: { service: settings.service },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  return destination ? pino(options, destination) : pino(options);
}
