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

  constructor(private readonly options: ClientOptions) {
    this.base = options.apiUrl.replace(/\/+$/, '');
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
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (err as Error).message;
      throw new CliError(EXIT.unreachable, `cannot reach the API at ${this.base} (${why})`);
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!res.ok) {
      const e = (parsed ?? {}) as ErrorBody;
      const code = e.error ?? 'http_error';
      const message = e.message ?? (text.slice(0, 200) || res.statusText);
      throw new CliError(EXIT.apiError, `${message} (HTTP ${res.status} ${code})`, parsed ?? { error: code, message, status: res.status });
    }
    if (parsed === undefined) throw new CliError(EXIT.apiError, `the API answered HTTP ${res.status} without JSON`);
    return parsed as T;
  }
}
