// Encryption in transit: HTTPS and gRPC over TLS with certificates made here by the openssl CLI, then mTLS where
// a client certificate from the right CA is required (none or a rogue CA's fails the handshake). Skipped without openssl.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fs } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadTls } from '../src/serve/tls.js';
import { predictV2Service } from '../src/serve/grpc/proto.js';
import { joinRawBytes } from '../src/serve/grpc/convert.js';
import { tempDir, tinyPackage } from './helpers/fixtures.js';
import { tools } from './helpers/tools.js';
import { makePki, pngOf, startSecureServer, type SecureServer, type TestPki } from './serve-security-helpers.js';

const openssl = tools.openssl;

let tmp: { dir: string; cleanup: () => Promise<void> };
let pki: TestPki;
let root: string;

beforeAll(async () => {
  tmp = await tempDir('mlctl-tls-');
  if (!openssl) return;
  pki = await makePki(path.join(tmp.dir, 'pki'));
  root = path.join(tmp.dir, 'models');
  await tinyPackage(root, { name: 'tiny' });
});

afterAll(async () => {
  await tmp?.cleanup();
});

interface Reply {
  status: number;
  body: string;
  protocol?: string | null;
  headers: import('node:http').IncomingHttpHeaders;
}

async function httpsGet(url: string, p: string, tls: { ca?: Buffer; cert?: Buffer; key?: Buffer }, method = 'GET', body?: Buffer, headers: Record<string, string> = {}): Promise<Reply> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = https.request({ host: u.hostname, port: u.port, path: p, method, headers, ...tls, agent: false, servername: 'localhost' }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, body: text, headers: res.headers, protocol: (res.socket as import('node:tls').TLSSocket).getProtocol?.() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function grpcCall(port: number, creds: grpc.ChannelCredentials, method: string, req: Record<string, unknown>): Promise<Record<string, any>> {
  const Client = predictV2Service();
  const c = new Client(`127.0.0.1:${port}`, creds, { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' });
  return new Promise((resolve, reject) => {
    (c as any)[method](req, new grpc.Metadata(), { deadline: Date.now() + 15_000 }, (err: Error | null, res: Record<string, any>) => {
      c.close();
      if (err) reject(err);
      else resolve(res);
    });
  });
}

describe.skipIf(!openssl)('TLS', () => {
  let srv: SecureServer;
  let ca: Buffer;

  beforeAll(async () => {
    srv = await startSecureServer(root, { tlsCert: pki.serverCert, tlsKey: pki.serverKey, grpcPort: 0 });
    ca = await fs.readFile(pki.ca);
  });
  afterAll(async () => {
    await srv?.close();
  });

  it('serves HTTPS (TLS 1.2+) with HSTS and refuses plain HTTP on the same port', async () => {
    expect(srv.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const res = await httpsGet(srv.url, '/v2/health/ready', { ca });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ ready: true });
    expect(res.protocol).toMatch(/^TLSv1\.[23]$/);
    expect(res.headers['strict-transport-security']).toMatch(/max-age=\d+/);
    const plain = await fetch(srv.url.replace('https:', 'http:') + '/v2/health/live').then((r) => r.status, () => 'refused');
    expect(plain).not.toBe(200);
  });

  it('a client that does not trust the CA fails the handshake', async () => {
    await expect(httpsGet(srv.url, '/v2/health/live', {})).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
  });

  it('predicts over HTTPS and over gRPC with TLS', async () => {
    const png = await pngOf(250, 250, 0);
    const res = await httpsGet(srv.url, '/predict', { ca }, 'POST', png, { 'content-type': 'image/png' });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body).predictions[0]).toHaveLength(3);
    const out = await grpcCall(srv.grpcPort!, grpc.credentials.createSsl(ca), 'ModelInfer', { model_name: 'tiny', inputs: [{ name: 'image', datatype: 'BYTES', shape: [1] }], raw_input_contents: [joinRawBytes([png])] });
    expect(out.outputs[0].shape).toEqual([1, 3]);
    await expect(grpcCall(srv.grpcPort!, grpc.credentials.createInsecure(), 'ServerLive', {})).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
  });
});

describe.skipIf(!openssl)('mTLS', () => {
  let srv: SecureServer;
  let ca: Buffer, cert: Buffer, key: Buffer, rogueCert: Buffer, rogueKey: Buffer;

  beforeAll(async () => {
    srv = await startSecureServer(root, { tlsCert: pki.serverCert, tlsKey: pki.serverKey, tlsCa: pki.ca, grpcPort: 0 });
    [ca, cert, key, rogueCert, rogueKey] = await Promise.all([pki.ca, pki.clientCert, pki.clientKey, pki.rogueCert, pki.rogueKey].map((f) => fs.readFile(f)));
  });
  afterAll(async () => {
    await srv?.close();
  });

  it('HTTPS accepts a client certificate from the CA and refuses none or a rogue one', async () => {
    expect((await httpsGet(srv.url, '/v2/health/live', { ca, cert, key })).status).toBe(200);
    await expect(httpsGet(srv.url, '/v2/health/live', { ca })).rejects.toThrow();
    await expect(httpsGet(srv.url, '/v2/health/live', { ca, cert: rogueCert, key: rogueKey })).rejects.toThrow();
  });

  it('gRPC accepts the client certificate and refuses a connection without one', async () => {
    expect(await grpcCall(srv.grpcPort!, grpc.credentials.createSsl(ca, key, cert), 'ServerLive', {})).toEqual({ live: true });
    await expect(grpcCall(srv.grpcPort!, grpc.credentials.createSsl(ca), 'ServerLive', {})).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    await expect(grpcCall(srv.grpcPort!, grpc.credentials.createSsl(ca, rogueKey, rogueCert), 'ServerLive', {})).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
  });
});

describe.skipIf(!openssl)('TLS configuration errors', () => {
  it('say what is wrong before the server starts', async () => {
    await expect(loadTls({ cert: pki.serverCert })).rejects.toThrow(/--tls-cert and --tls-key go together/);
    await expect(loadTls({ ca: pki.ca })).rejects.toThrow(/--tls-ca needs --tls-cert/);
    await expect(loadTls({ cert: pki.serverCert, key: pki.clientKey })).rejects.toThrow(/does not belong to certificate/);
    await expect(loadTls({ cert: pki.serverKey, key: pki.serverKey })).rejects.toThrow(/not a PEM X.509 certificate/);
    await expect(loadTls({ cert: path.join(tmp.dir, 'missing.pem'), key: pki.serverKey })).rejects.toThrow(/cannot read it \(ENOENT\)/);
    const ok = await loadTls({ cert: pki.serverCert, key: pki.serverKey, ca: pki.ca });
    expect(ok?.subject).toMatch(/CN=localhost/);
  });
});
