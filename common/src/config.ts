import { z } from 'zod';

/** Raised when the environment does not describe a runnable service; names every bad variable. */
export class ConfigError extends Error {
  constructor(readonly problems: { variable: string; problem: string }[]) {
    super('Invalid configuration:\n' + problems.map((p) => `  ${p.variable}: ${p.problem}`).join('\n'));
    this.name = 'ConfigError';
  }
}

/**
 * Parses environment variables once, at start. The schema's keys are the variable names, so
 * every error names the variable an operator has to fix.
 */
export function loadConfig<S extends z.ZodObject>(schema: S, env: NodeJS.ProcessEnv = process.env): z.output<S> {
  // Empty strings mean "unset" for every variable: `FOO=` in a .env file should take the default.
  const cleaned: Record<string, string> = {};
  // White space alone is a typo, not a value: z.coerce.number() would read `FOO=" "` as 0.
  const blank: { variable: string; problem: string }[] = [];
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined || v === '') continue;
    if (v.trim() === '' && k in schema.shape) blank.push({ variable: k, problem: 'is only white space: unset it or give a value' });
    else cleaned[k] = v;
  }
  const result = schema.safeParse(cleaned);
  const problems = result.success
    ? []
    : result.error.issues
        .map((issue) => ({
          variable: String(issue.path[0] ?? '(environment)'),
          problem: issue.message,
        }))
        .filter((p) => !blank.some((b) => b.variable === p.variable));
  if (blank.length > 0 || !result.success) throw new ConfigError([...blank, ...problems]);
  return result.data as z.output<S>;
}

/** Reusable field parsers for environment variables. */
export const env = {
  port: (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback),
  host: (fallback = '127.0.0.1') => z.string().min(1).default(fallback),
  url: (protocols: string[]) =>
    z.string().refine(
      (v) => {
        try {
          return protocols.includes(new URL(v).protocol.replace(/:$/, ''));
        } catch {
          return false;
        }
      },
      { message: `must be a URL with scheme ${protocols.join(' or ')}` },
    ),
  bool: (fallback: boolean) =>
    z
      .enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off'], {
        message: 'must be true or false',
      })
      .default(fallback ? 'true' : 'false')
      .transform((v) => ['true', '1', 'yes', 'on'].includes(v)),
  /** Comma-separated list; entries trimmed, empties dropped. */
  list: () =>
    z.string().transform((v) =>
      v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    ),
  logLevel: () => z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  durationMs: (fallback: number) => z.coerce.number().int().min(0).default(fallback),
};

type Listener<P extends string> = { [K in `${P}_HOST`]: ReturnType<typeof env.host> } & {
  [K in `${P}_GRPC_PORT` | `${P}_HTTP_PORT`]: ReturnType<typeof env.port>;
};

/**
 * The variables every service starts with, spread into its schema: where it listens (gRPC and
 * HTTP), how much it logs and its Postgres. `prefix` names the service's own variables.
 */
export function serviceBasics<P extends string>(prefix: P, ports: { grpc: number; http: number }) {
  const listener = {
    [`${prefix}_HOST`]: env.host(),
    [`${prefix}_GRPC_PORT`]: env.port(ports.grpc),
    [`${prefix}_HTTP_PORT`]: env.port(ports.http),
  } as Listener<P>;
  return { ...listener, LOG_LEVEL: env.logLevel(), DATABASE_URL: env.url(['postgres', 'postgresql']) };
}

/**
 * Loads configuration at process start; on a bad environment prints what is wrong
 * (variable by variable) and exits with status 2 instead of a stack trace.
 */
export function loadConfigOrExit<T>(service: string, load: () => T): T {
  try {
    return load();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${service}: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}
