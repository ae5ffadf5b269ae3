// Webhook notifier: POSTs each event as JSON (or in ntfy's or Slack's shape for phone push and chat), signed
// with HMAC-SHA256 over `${timestamp}.${body}`. 2xx is delivered; 408/425/429/5xx and network errors are retried
// (Retry-After honoured); any other 4xx or a redirect cannot succeed by retrying and goes to the dead letters.
import type { WebhookSink } from '../config/types.js';
import type { WatchEvent } from '../events.js';
import { deadline } from '../../util/deadline.js';
import { redactUrl } from '../sources/types.js';
import { signatureHeader, SIGNATURE_HEADER } from './sign.js';
import { DeliveryError, type DeliveryContext, type Sink } from './types.js';

const NTFY_PRIORITY = { info: '3', warning: '4', critical: '5' } as const;
const NTFY_TAGS = { info: 'information_source', warning: 'warning', critical: 'rotating_light' } as const;

/** Header values must be Latin-1: anything else is sent RFC 2047-encoded (ntfy decodes it). */
function headerText(s: string): string {
  return /^[\x20-\x7e]*$/.test(s) ? s : `=?UTF-8?B?${Buffer.from(s).toString('base64')}?=`;
}

function titleOf(e: WatchEvent): string {
  if (e.type === 'detection') return `${e.camera}: ${e.rule}`;
  return `${e.camera}: camera ${e.type === 'camera_offline' ? 'offline' : 'back online'}`;
}

interface Request {
  body: string | Buffer;
  contentType: string;
  headers: Record<string, string>;
  method: 'POST' | 'PUT';
}

/** Shape the request for the configured format. */
export async function buildRequest(cfg: WebhookSink, event: WatchEvent, ctx: Pick<DeliveryContext, 'snapshot'>): Promise<Request> {
  const snap = cfg.snapshot === 'inline' && event.snapshot ? await ctx.snapshot() : undefined;
  const url = cfg.snapshot === 'url' ? event.snapshot?.url : undefined;
  if (cfg.format === 'ntfy') {
    const headers: Record<string, string> = { Title: headerText(titleOf(event)), Priority: NTFY_PRIORITY[event.severity], Tags: NTFY_TAGS[event.severity] };
    if (url) headers.Attach = url;
    // ntfy takes an attachment as the PUT body, with the text in the Message header.
    if (snap) return { method: 'PUT', body: snap, contentType: 'image/jpeg', headers: { ...headers, Filename: `${event.camera}-${event.id}.jpg`, Message: headerText(event.message) } };
    return { method: 'POST', body: event.message, contentType: 'text/plain; charset=utf-8', headers };
  }
  if (cfg.format === 'slack') {
    const text = `*${titleOf(event)}* (${event.severity}): ${event.message}${url ? ` <${url}|snapshot>` : ''}`;
    return { method: 'POST', body: JSON.stringify({ text }), contentType: 'application/json', headers: {} };
  }
  const snapshot = event.snapshot ? { file: event.snapshot.file, ...(url ? { url } : {}), ...(snap ? { content_type: 'image/jpeg', data: snap.toString('base64') } : {}) } : undefined;
  return { method: 'POST', body: JSON.stringify({ ...event, ...(snapshot ? { snapshot } : {}) }), contentType: 'application/json', headers: {} };
}

/** Retry-After as seconds or an HTTP date → ms (capped at an hour). */
export function retryAfterMs(value: string | null): number | undefined {
  if (!value) return undefined;
  const secs = /^\s*\d+\s*$/.test(value) ? Number(value) : (Date.parse(value) - Date.now()) / 1000;
  return Number.isFinite(secs) ? Math.min(3600, Math.max(0, secs)) * 1000 : undefined;
}

const RETRYABLE = new Set([408, 425, 429]);

export function webhookSink(cfg: WebhookSink): Sink {
  return {
    config: cfg,
    describe: `webhook ${cfg.name} (${redactUrl(cfg.url)}, ${cfg.format})`,
    async deliver(event, ctx) {
      const req = await buildRequest(cfg, event, ctx);
      const body = typeof req.body === 'string' ? Buffer.from(req.body) : req.body;
      const headers: Record<string, string> = {
        ...cfg.headers,
        ...req.headers,
        'content-type': req.contentType,
        'user-agent': 'mlctl-watch',
        'x-mlctl-event-id': event.id,
        'x-mlctl-event-type': event.type,
        'x-mlctl-delivery-attempt': String(ctx.attempt),
      };
      if (cfg.secrets.length) headers[SIGNATURE_HEADER] = signatureHeader(cfg.secrets, body);
      // One deadline for connect + send + answer: a receiver that accepts and never answers (or stalls in the middle
      // of an error body) ends the attempt, and the loop retries it.
      const d = deadline(cfg.timeoutMs, ctx.signal);
      let res: Response;
      let text = '';
      try {
        res = await fetch(cfg.url, { method: req.method, headers, body, redirect: 'manual', signal: d.signal });
        // Read within the same deadline: it frees the kept-alive connection, and explains a refusal. A 2xx is delivered
        // even when its body then stalls or breaks.
        text = await res.text().catch(() => '');
      } catch (err) {
        const cause = (err as { cause?: { code?: string } }).cause?.code;
        throw new DeliveryError(d.expired() ? `no answer within ${cfg.timeoutMs} ms` : `cannot connect (${cause ?? (err as Error).message})`);
      } finally {
        d.clear();
      }
      if (res.ok) return;
      const detail = `HTTP ${res.status} ${res.statusText}${text ? `: ${text.replace(/\s+/g, ' ').slice(0, 200)}` : ''}`;
      if (res.status >= 300 && res.status < 400) throw new DeliveryError(`${detail} (redirected to ${res.headers.get('location') ?? '?'}: configure that URL instead)`, true);
      if (res.status >= 500 || RETRYABLE.has(res.status)) throw new DeliveryError(detail, false, retryAfterMs(res.headers.get('retry-after')));
      throw new DeliveryError(detail, true);
    },
    async close() {},
  };
}
