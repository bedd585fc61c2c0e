/**
 * `http` transport (messages.md 9.1): POST {MESSAGE_BROKER_HTTP_SENDER_BASE_URL}{channel} with the
 * attributes as headers (optionally `X-` prefixed), a bearer token and the payload as JSON body.
 * Any 2xx is success; `{"MessageId": ...}` in the answer becomes the receipt.
 */
import type { OutboxRow } from '../outbox.js';
import type { TokenProvider } from '../token.js';
import { ATTRIBUTE_NAMES, attributeHeaderName } from './attributes.js';
import type { PublishResult, Transport } from './types.js';

export const HTTP_PUBLISH_TIMEOUT_MS = 10_000;

export interface HttpTransportOptions {
  senderBaseUrl: string;
  headerPrefix: string;
  tokens: TokenProvider;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export function withTrailingSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}

/** The request headers of one publish (without Authorization). */
export function publishHeaders(row: OutboxRow, prefix: string): Record<string, string> {
  const headers: Record<string, string> = { 'Content-Type': 'application/json', Accept: 'application/json' };
  const attrs = row.attributes as unknown as Record<string, unknown>;
  for (const a of ATTRIBUTE_NAMES) {
    const v = attrs[a];
    if (v === undefined || v === null || v === '') continue;
    headers[`${prefix}${attributeHeaderName(a)}`] = String(v);
  }
  return headers;
}

export class HttpTransport implements Transport {
  readonly kind = 'http';
  private readonly base: string;
  private readonly timeoutMs: number;
  private readonly fetchFn: typeof fetch;

  constructor(private readonly opts: HttpTransportOptions) {
    this.base = withTrailingSlash(opts.senderBaseUrl);
    this.timeoutMs = opts.timeoutMs ?? HTTP_PUBLISH_TIMEOUT_MS;
    this.fetchFn = opts.fetch ?? fetch;
  }

  async publish(row: OutboxRow): Promise<PublishResult> {
    const headers = publishHeaders(row, this.opts.headerPrefix);
    const token = await this.opts.tokens.getToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    let res: Response;
    try {
      res = await this.fetchFn(this.base + encodeURIComponent(row.channel), {
        method: 'POST',
        headers,
        body: JSON.stringify(row.payload),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      const e = err as Error;
      const reason = e.name === 'TimeoutError' ? `no answer within ${this.timeoutMs} ms` : e.message;
      throw new Error(`Event Platform publish to ${row.channel} failed: ${reason}`);
    }
    const text = await res.text().catch(() => '');
    if (res.status === 401 || res.status === 403) this.opts.tokens.invalidate();
    if (res.status < 200 || res.status >= 300) {
      throw new Error(`Event Platform publish to ${row.channel} answered HTTP ${res.status}${text ? `: ${text.slice(0, 200)}` : ''}`);
    }
    let receipt: string | undefined;
    try {
      const parsed = JSON.parse(text) as { MessageId?: unknown };
      if (parsed && typeof parsed.MessageId === 'string') receipt = parsed.MessageId;
    } catch {
      /* a 2xx without JSON is still a success */
    }
    return receipt === undefined ? {} : { receipt };
  }
}
