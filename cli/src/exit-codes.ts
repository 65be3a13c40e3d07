/** Exit codes scripts can rely on (docs/cli.md). */
export const EXIT = {
  ok: 0,
  /** The API answered with an error (4xx/5xx); its code and message are on stderr. */
  apiError: 1,
  /** Bad command line: unknown command or option, missing argument, bad value, no token. */
  usage: 2,
  /** Nothing answered at --api-url (refused, timed out, DNS). */
  unreachable: 3,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A failure that knows its exit code and what to tell the user. */
export class CliError extends Error {
  constructor(
    readonly exitCode: ExitCode,
    message: string,
    /** The API's error body, printed as is with --json. */
    readonly body?: unknown,
  ) {
    super(message);
    this.name = 'CliError';
  }
}
