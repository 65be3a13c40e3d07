/** The JSON error shape every Tollgate HTTP surface returns: `{error, message, details?}`. */
export interface ErrorBody {
  error: string;
  message: string;
  details?: unknown;
}

/** An error that already knows its HTTP status and public message; safe to show a client. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }

  toBody(): ErrorBody {
    const body: ErrorBody = { error: this.code, message: this.message };
    if (this.details !== undefined) body.details = this.details;
    return body;
  }
}
