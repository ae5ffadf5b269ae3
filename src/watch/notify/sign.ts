// Webhook signatures in the Stripe style: HMAC-SHA256 over `${timestamp}.${body}`, sent as
// `X-Mlctl-Signature: t=<unix seconds>,v1=<hex>` (one v1 per secret while a secret is being rotated).
// Receivers recompute the HMAC over the raw body, compare in constant time and reject old timestamps (replays).
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'x-mlctl-signature';
/** Default replay window for verifySignature (Stripe uses 5 minutes too). */
export const DEFAULT_TOLERANCE_SECONDS = 300;

export function hmacHex(secret: string, timestamp: number, body: string | Uint8Array): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
}

/** The header value for `body` signed at `timestamp` with every secret (the first is the current one). */
export function signatureHeader(secrets: string[], body: string | Uint8Array, timestamp = Math.floor(Date.now() / 1000)): string {
  return [`t=${timestamp}`, ...secrets.map((s) => `v1=${hmacHex(s, timestamp, body)}`)].join(',');
}

export interface VerifyResult {
  ok: boolean;
  reason?: string;
  timestamp?: number;
}

/**
 * Check a received signature: the raw body, the header value and the receiver's secret. Fails on a missing or
 * malformed header, a timestamp older (or newer) than `toleranceSeconds`, or no matching v1 signature.
 */
export function verifySignature(header: string | undefined, body: string | Uint8Array, secret: string, opts: { toleranceSeconds?: number; now?: number } = {}): VerifyResult {
  if (!header) return { ok: false, reason: 'no signature header' };
  const parts = header.split(',').map((p) => p.trim().split('=') as [string, string]);
  const t = Number(parts.find(([k]) => k === 't')?.[1]);
  const sigs = parts.filter(([k]) => k === 'v1').map(([, v]) => v);
  if (!Number.isInteger(t) || sigs.length === 0) return { ok: false, reason: 'malformed signature header (expected t=…,v1=…)' };
  const now = opts.now ?? Math.floor(Date.now() / 1000);
  const tolerance = opts.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (Math.abs(now - t) > tolerance) return { ok: false, reason: `timestamp ${t} is outside the ${tolerance} s tolerance (replayed or clock skew)`, timestamp: t };
  const expected = Buffer.from(hmacHex(secret, t, body), 'hex');
  const match = sigs.some((s) => {
    const got = Buffer.from(s, 'hex');
    return got.length === expected.length && timingSafeEqual(got, expected);
  });
  return match ? { ok: true, timestamp: t } : { ok: false, reason: 'no v1 signature matches the secret', timestamp: t };
}
