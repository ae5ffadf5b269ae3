// Encryption in transit for mlctl serve: --tls-cert/--tls-key turn on HTTPS and gRPC over TLS, --tls-ca adds
// client-certificate verification (mTLS). Files are checked up front so a bad path fails at start, not on first call.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { MlctlError } from '../errors.js';

export interface TlsFlags {
  cert?: string;
  key?: string;
  ca?: string;
}

export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  /** Present when clients must show a certificate signed by this CA (mTLS). */
  ca?: Buffer;
  /** Subject and expiry of the server certificate, for the start-up log line. */
  subject: string;
  validTo: string;
}

async function readPem(file: string, what: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (err) {
    throw new MlctlError('TLS_INVALID', [`${what} ${file}`, `cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`]);
  }
}

/** Read and check the TLS files; undefined when TLS is off. Mismatched or unparsable files are MlctlErrors. */
export async function loadTls(flags: TlsFlags): Promise<TlsMaterial | undefined> {
  if (!flags.cert && !flags.key) {
    if (flags.ca) throw new MlctlError('OPTION_CONFLICT', ['--tls-ca needs --tls-cert and --tls-key (client certificates are verified over TLS)']);
    return undefined;
  }
  if (!flags.cert || !flags.key) throw new MlctlError('OPTION_CONFLICT', ['--tls-cert and --tls-key go together: pass both PEM files']);
  const cert = await readPem(flags.cert, 'certificate');
  const key = await readPem(flags.key, 'key');
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new MlctlError('TLS_INVALID', [`certificate ${flags.cert}`, `not a PEM X.509 certificate (${(err as Error).message})`]);
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new MlctlError('TLS_INVALID', [`key ${flags.key}`, `not an unencrypted PEM private key (${(err as Error).message})`]);
  }
  if (!x509.checkPrivateKey(privateKey)) throw new MlctlError('TLS_INVALID', [`key ${flags.key}`, `it does not belong to certificate ${flags.cert}`]);
  if (Date.parse(x509.validTo) < Date.now()) throw new MlctlError('TLS_INVALID', [`certificate ${flags.cert}`, `it expired on ${x509.validTo}`]);
  let ca: Buffer | undefined;
  if (flags.ca) {
    ca = await readPem(flags.ca, 'CA bundle');
    try {
      new X509Certificate(ca);
    } catch (err) {
      throw new MlctlError('TLS_INVALID', [`CA bundle ${flags.ca}`, `not a PEM X.509 certificate (${(err as Error).message})`]);
    }
  }
  return { cert, key, ...(ca ? { ca } : {}), subject: x509.subject.replace(/\n/g, ', '), validTo: x509.validTo };
}

/** Options for Fastify's `https` (node:https createServer): TLS 1.2+, client certificates required with a CA. */
export function httpsOptions(tls: TlsMaterial): { cert: Buffer; key: Buffer; ca?: Buffer; requestCert: boolean; rejectUnauthorized: boolean; minVersion: 'TLSv1.2' } {
  return {
    cert: tls.cert,
    key: tls.key,
    ...(tls.ca ? { ca: tls.ca } : {}),
    requestCert: Boolean(tls.ca),
    rejectUnauthorized: Boolean(tls.ca),
    minVersion: 'TLSv1.2',
  };
}

/** gRPC server credentials: insecure without TLS material, TLS otherwise, verifying client certificates with a CA. */
export function grpcServerCredentials(tls: TlsMaterial | undefined): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  return grpc.ServerCredentials.createSsl(tls.ca ?? null, [{ cert_chain: tls.cert, private_key: tls.key }], Boolean(tls.ca));
}

/** One start-up line describing the transport security in effect. */
export function describeTls(tls: TlsMaterial | undefined): string {
  if (!tls) return 'TLS off (plain HTTP/gRPC; use --tls-cert/--tls-key outside a trusted network)';
  return `TLS on (certificate ${tls.subject}, valid to ${tls.validTo})${tls.ca ? ', client certificates required (mTLS)' : ''}`;
}
