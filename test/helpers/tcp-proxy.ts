/**
 * A TCP proxy in front of a service (PostgreSQL, RabbitMQ) that a test can cut (every connection dropped, port
 * closed: the app sees resets and refused connections) and restore on the same port. The shared services are never
 * stopped.
 */
import net from 'node:net';

export class TcpProxy {
  private server: net.Server | undefined;
  /** Open connections as [client, upstream]. */
  private readonly pairs = new Set<[net.Socket, net.Socket]>();
  port = 0;
  constructor(private readonly target: { host: string; port: number }) {}

  static forUrl(url: string, defaultPort: number): TcpProxy {
    const u = new URL(url);
    return new TcpProxy({ host: u.hostname, port: Number(u.port || defaultPort) });
  }

  /** `url` with its host and port replaced by this proxy's. */
  via(url: string): string {
    const u = new URL(url);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    return u.toString();
  }

  async start(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.target);
      const pair: [net.Socket, net.Socket] = [client, upstream];
      this.pairs.add(pair);
      const end = (): void => {
        client.destroy();
        upstream.destroy();
        this.pairs.delete(pair);
      };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  get connections(): number {
    return this.pairs.size;
  }

  get up(): boolean {
    return this.server !== undefined;
  }

  /** Stops passing the service's bytes to the clients (they are kept, not lost); requests still reach the service. */
  holdReplies(): void {
    for (const [client, upstream] of this.pairs) {
      upstream.unpipe(client);
      upstream.pause();
    }
  }

  /** Passes the held and later replies on again. */
  releaseReplies(): void {
    for (const [client, upstream] of this.pairs) upstream.pipe(client);
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const [client, upstream] of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }
}

/**
 * A round-robin TCP balancer in front of several app instances: each new connection goes to the next instance; an
 * instance that refuses (killed) is skipped for that connection. Both the test client and the sandbox PSP's webhooks
 * (APP_BASE_URL) go through it, so every instance gets requests and webhooks.
 */
export class RoundRobinProxy {
  private server: net.Server | undefined;
  private next = 0;
  private readonly sockets = new Set<net.Socket>();
  port = 0;
  constructor(private readonly targets: () => number[]) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const server = net.createServer((client) => {
      client.pause();
      this.sockets.add(client);
      client.on('close', () => this.sockets.delete(client));
      const ports = this.targets();
      const first = this.next++;
      const attempt = (i: number): void => {
        if (i >= ports.length) {
          client.destroy();
          return;
        }
        const upstream = net.connect({ host: '127.0.0.1', port: ports[(first + i) % ports.length]! });
        upstream.once('error', () => {
          upstream.destroy();
          if (!connected) attempt(i + 1);
          else client.destroy();
        });
        let connected = false;
        upstream.once('connect', () => {
          connected = true;
          client.on('error', () => upstream.destroy()).on('close', () => upstream.destroy());
          upstream.on('close', () => client.destroy());
          client.pipe(upstream);
          upstream.pipe(client);
          client.resume();
        });
      };
      attempt(0);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s) {
      for (const c of this.sockets) c.destroy();
      await new Promise<void>((r) => s.close(() => r()));
    }
  }
}
