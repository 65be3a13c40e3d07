import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A loopback TCP proxy in front of a real Redis or Postgres, for faults that the server itself
 * cannot be asked to make for one client only: a replica whose pub/sub messages are lost while
 * its other Redis traffic flows, or whose database refuses it while other replicas' does not.
 */
export interface TcpProxy {
  port: number;
  /** Drop what the server sends on connections that subscribed (pub/sub messages lost, the connection up). */
  swallowPubSub: boolean;
  /** Close every connection and refuse new ones until set back to false. */
  setRefusing(on: boolean): void;
  /** Upstream (proxy → server) local ports of the connections that subscribed: Redis names them in CLIENT LIST. */
  subscriberUpstreamPorts(): number[];
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const pairs = new Set<{ client: Socket; upstream: Socket; subscribed: boolean }>();
  let refusing = false;
  const server: Server = createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = connect(target.port, target.host);
    const pair = { client, upstream, subscribed: false };
    pairs.add(pair);
    client.on('data', (chunk: Buffer) => {
      if (/subscribe/i.test(chunk.toString('latin1'))) pair.subscribed = true;
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (pair.subscribed && proxy.swallowPubSub) return;
      client.write(chunk);
    });
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', end);
    upstream.on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const proxy: TcpProxy = {
    port: typeof address === 'object' && address ? address.port : 0,
    swallowPubSub: false,
    setRefusing(on) {
      refusing = on;
      if (on) for (const p of [...pairs]) p.client.destroy();
    },
    subscriberUpstreamPorts: () => [...pairs].filter((p) => p.subscribed).map((p) => p.upstream.localPort!),
    close: () =>
      new Promise<void>((resolve) => {
        for (const p of [...pairs]) p.client.destroy();
        server.close(() => resolve());
      }),
  };
  return proxy;
}

/** The same URL with its host and port replaced by the proxy's. */
export function viaProxy(url: string, proxy: TcpProxy): string {
  const u = new URL(url);
  u.hostname = '127.0.0.1';
  u.port = String(proxy.port);
  return u.toString();
}
