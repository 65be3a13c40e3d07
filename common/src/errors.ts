import type { ErrorCode } from './error-codes.js';

/** The JSON error shape every Tollgate HTTP surface returns: `{error, message, details?, request_id}`. */
export interface ErrorBody {
  error: ErrorCode;
  message: string;
  details?: unknown;
  /** The request's id (also the `x-request-id` response header), for a user to quote; added by the HTTP layer. */
  request_id?: string;
}

/** An error that already knows its HTTP status and public message; safe to show a client. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    /** Only a code from ERROR_CODES (error-codes.ts): add a new one there first. */
    readonly code: ErrorCode,
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
