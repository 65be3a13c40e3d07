import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedDelivery {
  headers: IncomingHttpHeaders;
  body: string;
  /** The answer this request got. */
  status: number;
  /** When it arrived (ms since the epoch). */
  at: number;
}

/**
 * A customer's webhook receiver on loopback: records every request and answers with the next
 * status from `script` (then `fallback`), so a test can make it fail a set number of times.
 */
export async function startWebhookReceiver(): Promise<{
  url: string;
  received: ReceivedDelivery[];
  answer(statuses: number[], fallback?: number): void;
  close(): Promise<void>;
}> {
  const received: ReceivedDelivery[] = [];
  let script: number[] = [];
  let fallback = 200;
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const status = script.shift() ?? fallback;
      received.push({ headers: req.headers, body, status, at: Date.now() });
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status >= 300 ? 'receiver says no' : 'ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    received,
    answer(statuses, fb = 200) {
      script = [...statuses];
      fallback = fb;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
