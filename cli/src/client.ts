import { createTollgateClient, type TollgateClient } from '@tollgate/sdk';
import { CliError, EXIT } from './exit-codes.js';

export interface ClientOptions {
  apiUrl: string;
  token: string;
  timeoutMs?: number;
}

interface ErrorBody {
  error?: string;
  message?: string;
  details?: unknown;
}

/** A thin client of the key-management API: JSON in, JSON out, failures as CliErrors. */
export class ApiClient {
  private readonly base: string;

  /** The typed client (@tollgate/sdk) over the same transport: timeouts and unreachable errors as below. */
  readonly sdk: TollgateClient;

  constructor(private readonly options: ClientOptions) {
    this.base = options.apiUrl.replace(/\/+$/, '');
    this.sdk = createTollgateClient({ baseUrl: this.base, token: options.token, fetch: (input, init) => this.send(input, init) });
  }

  private async send(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    try {
      const request = new Request(input, init);
      return await fetch(new Request(request, { signal: AbortSignal.timeout(this.options.timeoutMs ?? 15_000) }));
    } catch (err) {
      throw this.unreachable(err);
    }
  }

  private unreachable(err: unknown): CliError {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (err as Error).message;
    return new CliError(EXIT.unreachable, `cannot reach the API at ${this.base} (${why})`);
  }

  /** An SDK call's answer, or its failure as the CliError `request` would throw. */
  async call<T>(pending: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<NonNullable<T>> {
    const { data, error, response } = await pending;
    if (!response.ok) throw apiError(response.status, response.statusText, error);
    if (data === undefined || data === null) throw new CliError(EXIT.apiError, `the API answered HTTP ${response.status} without JSON`);
    return data as NonNullable<T>;
  }

  async request<T = unknown>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const init: RequestInit = {
      method,
      headers: { authorization: `Bearer ${this.options.token}`, accept: 'application/json', ...headers },
      signal: AbortSignal.timeout(this.options.timeoutMs ?? 15_000),
    };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      (init.headers as Record<string, string>)['content-type'] = 'application/json';
    }
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, init);
    } catch (err) {
      throw this.unreachable(err);
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!res.ok) throw apiError(res.status, res.statusText, parsed ?? text);
    if (parsed === undefined) throw new CliError(EXIT.apiError, `the API answered HTTP ${res.status} without JSON`);
    return parsed as T;
  }
}

/** An API error answer as a CliError: the server's code and message, or what the body was. */
function apiError(status: number, statusText: string, body: unknown): CliError {
  const parsed = body && typeof body === 'object' ? (body as ErrorBody) : undefined;
  const code = parsed?.error ?? 'http_error';
  const message = parsed?.message ?? ((typeof body === 'string' ? body.slice(0, 200) : '') || statusText);
  return new CliError(EXIT.apiError, `${message} (HTTP ${status} ${code})`, parsed ?? { error: code, message, status });
}
