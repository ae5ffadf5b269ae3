// Wire-level hygiene of mlctl serve (issue #28 items 7 and 12) over real sockets: pipelined HTTP requests are all
// answered when a later one is malformed, refused (415) or carries broken JSON, and protobuf that does not decode
// is a gRPC INVALID_ARGUMENT (as docs/serving.md promises), not INTERNAL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { tempDir, tinyPackage } from './helpers/fixtures.js';
import { pngOf, startSecureServer, type SecureServer } from './serve-security-helpers.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let srv: SecureServer;
let png: Buffer;

beforeAll(async () => {
  tmp = await tempDir('mlctl-wire-');
  const root = path.join(tmp.dir, 'models');
  await tinyPackage(root, { name: 'tiny' });
  png = await pngOf(30, 60, 220);
  srv = await startSecureServer(root, { grpcPort: 0 });
});

afterAll(async () => {
  await srv?.close();
  await tmp?.cleanup();
});

/** Write `payload` in one go on a fresh connection; resolve with everything received until the server closes (or `ms` pass). */
function exchange(payload: Buffer, ms = 20_000): Promise<{ text: string; closed: boolean }> {
  const { port } = new URL(srv.url);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect(Number(port), '127.0.0.1', () => socket.write(payload));
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed: false });
    }, ms);
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed: true });
    });
  });
}

const statuses = (text: string) => [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));

const predictPng = () => Buffer.concat([Buffer.from(`POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: ${png.length}\r\n\r\n`), png]);
const live = (close = false) => Buffer.from(`GET /v2/health/live HTTP/1.1\r\nHost: x\r\n${close ? 'Connection: close\r\n' : ''}\r\n`);
const body = (ct: string, b: string) => Buffer.from(`POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: ${ct}\r\nContent-Length: ${Buffer.byteLength(b)}\r\n\r\n${b}`);

describe('HTTP pipelining', () => {
  it('answers three pipelined predictions before the 400 of a malformed fourth request in the same write', async () => {
    const payload = Buffer.concat([predictPng(), predictPng(), predictPng(), Buffer.from('GET /v2/health/live HTTP/1.1\r\nHost: x\r\nthis is not a header\r\n\r\n')]);
    const { text, closed } = await exchange(payload);
    expect(statuses(text)).toEqual([200, 200, 200, 400]);
    expect(text).toContain('"code":"INPUT_INVALID"');
    expect(closed).toBe(true);
  });

  it('a 415 in the middle of 200 pipelined requests does not drop the ones queued behind it', async () => {
    const reqs: Buffer[] = [];
    for (let i = 0; i < 200; i++) reqs.push(i === 2 ? body('application/xml', '<hello/>') : live(i === 199));
    const { text } = await exchange(Buffer.concat(reqs));
    const got = statuses(text);
    expect(got).toHaveLength(200);
    expect(got[2]).toBe(415);
    expect(got.filter((s) => s === 200)).toHaveLength(199);
  });

  it('malformed JSON answers 400 and the requests queued behind it still get their answers', async () => {
    const reqs = [predictPng(), body('application/json', '{"instances": [ broken'), predictPng(), live(), live(true)];
    const { text } = await exchange(Buffer.concat(reqs));
    expect(statuses(text)).toEqual([200, 400, 200, 200, 200]);
  });

  it('a body over the limit still closes the connection (its unread rest cannot be framed)', async () => {
    const limit = srv.server.app.mlctl.bodyLimit;
    const head = Buffer.from(`POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: ${limit + 10}\r\n\r\n`);
    const { text, closed } = await exchange(Buffer.concat([head, Buffer.alloc(1024)]), 10_000);
    expect(statuses(text)).toEqual([413]);
    expect(closed).toBe(true);
  });
});

describe('gRPC ModelInfer with bytes that are not protobuf', () => {
  const raw = (method: string, bytes: Buffer): Promise<grpc.ServiceError | null> => {
    const client = new grpc.Client(`127.0.0.1:${srv.grpcPort}`, grpc.credentials.createInsecure());
    return new Promise((resolve) => {
      client.makeUnaryRequest(`/inference.GRPCInferenceService/${method}`, (b: Buffer) => b, (b: Buffer) => b, bytes, new grpc.Metadata(), { deadline: Date.now() + 20_000 }, (err) => {
        client.close();
        resolve(err);
      });
    });
  };

  it('answers INVALID_ARGUMENT saying the message does not decode', async () => {
    // raw_input_contents claiming 16 bytes with 1 present; a varint that never ends.
    for (const garbage of [Buffer.from([0x3a, 0x10, 0x01]), Buffer.from([0xff, 0xff, 0xff])]) {
      const err = await raw('ModelInfer', garbage);
      expect(err?.code, err?.details).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err?.details).toMatch(/ModelInferRequest.*(could not be decoded|not a valid)/);
    }
    // The same for any other method of the service.
    expect((await raw('ModelMetadata', Buffer.from([0xff, 0xff, 0xff])))?.code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it('a bad message in a ModelStreamInfer stream is answered with an error for that message; the stream carries on', async () => {
    const client = new grpc.Client(`127.0.0.1:${srv.grpcPort}`, grpc.credentials.createInsecure());
    const stream = client.makeBidiStreamRequest('/inference.GRPCInferenceService/ModelStreamInfer', (b: Buffer) => b, (b: Buffer) => b, new grpc.Metadata());
    const replies: Buffer[] = [];
    const done = new Promise<grpc.StatusObject>((resolve) => {
      stream.on('data', (b: Buffer) => replies.push(b));
      stream.on('status', resolve);
      stream.on('error', () => {});
    });
    stream.write(Buffer.from([0x3a, 0x10, 0x01]));
    stream.end();
    const status = await done;
    client.close();
    expect(status.code).toBe(grpc.status.OK);
    expect(replies).toHaveLength(1);
    expect(replies[0]!.toString('latin1')).toMatch(/could not be decoded/);
  });
});
