// The error registry: one row per code gives the CLI's exit code, REST's HTTP status and gRPC's status, and real
// failures come out that way on all three (a real server on loopback, a real gRPC client, real CLI runs through
// main: a failed evaluate gate and a quantize step rejected by its accuracy gate carry GATE_FAILED in --json).
import * as grpc from '@grpc/grpc-js';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERRORS, EXIT_CODES, GRPC_STATUS, MlctlError, errorTable, type ErrorCode } from '../src/errors.js';
import { accessDenied, httpStatusOf, isExposed } from '../src/serve/errors.js';
import { grpcFailureOf } from '../src/serve/grpc/convert.js';
import { predictV2Service } from '../src/serve/grpc/proto.js';
import { runCli } from './helpers/cli.js';
import { fragileColours, mlctlHome, tempDir, tinyPackage, type MlctlHome } from './helpers/fixtures.js';
import { startSecureServer, type SecureServer } from './serve-security-helpers.js';

const codes = Object.keys(ERRORS) as ErrorCode[];

describe('the registry', () => {
  it('gives every code an exit code, an HTTP status and a gRPC status that agree', () => {
    const exits = new Set(EXIT_CODES.map((e) => e.code));
    for (const code of codes) {
      const def = ERRORS[code];
      expect(exits.has(def.exit), `${code}: exit ${def.exit} is documented`).toBe(true);
      expect(def.http >= 400 && def.http < 600, `${code}: HTTP ${def.http}`).toBe(true);
      // A plain 500 is what clients never see the message of; gRPC must hide it the same way.
      expect(def.http === 500, `${code}: HTTP 500 ⇔ gRPC INTERNAL`).toBe(def.grpc === 'INTERNAL');
      expect(def.meaning.length).toBeGreaterThan(5);
    }
    expect(errorTable().map((r) => r.code)).toEqual(codes);
  });

  it('MlctlError carries the row: message template, exit, HTTP, gRPC, Retry-After', () => {
    const e = new MlctlError('DATA_DIR_MISSING', ['/x']);
    expect(e.message).toBe('dataset folder /x does not exist: pass --data DIR pointing at a folder with one subfolder per class');
    expect([e.exitCode, e.httpStatus, e.grpcStatus]).toEqual([1, 500, GRPC_STATUS.INTERNAL]);
    const q = new MlctlError('QUEUE_FULL', ['queue full']);
    expect([q.exitCode, q.httpStatus, q.grpcStatus, q.retryAfter]).toEqual([1, 503, GRPC_STATUS.UNAVAILABLE, 1]);
    expect(new MlctlError('QUEUE_FULL', ['q'], { retryAfter: 4 }).retryAfter).toBe(4);
    const denied = accessDenied({ status: 429, message: 'slow down', retryAfterSec: 7 });
    expect([denied.code, denied.httpStatus, denied.grpcStatus, denied.retryAfter]).toEqual(['RATE_LIMITED', 429, GRPC_STATUS.RESOURCE_EXHAUSTED, 7]);
    expect(accessDenied({ status: 401, message: 'no key' }).code).toBe('UNAUTHENTICATED');
    expect(accessDenied({ status: 403, message: 'not yours' }).code).toBe('PERMISSION_DENIED');
  });

  it('REST and gRPC map every code from the same row; unexposed errors stay generic', () => {
    for (const code of codes) {
      const err = new MlctlError(code, ['SECRET-41', 'b', 'c']);
      expect(httpStatusOf(err)).toBe(ERRORS[code].http);
      const g = grpcFailureOf(err, 'rid');
      if (isExposed(err)) {
        expect(g).toMatchObject({ code: GRPC_STATUS[ERRORS[code].grpc], details: err.message, internal: false });
      } else {
        expect(g).toMatchObject({ code: GRPC_STATUS.INTERNAL, internal: true });
        expect(g.details).not.toContain('SECRET-41');
      }
    }
    expect(grpcFailureOf(new Error('ENOENT /secret'), 'r9')).toEqual({ code: GRPC_STATUS.INTERNAL, details: 'internal server error (request id r9); the details are in the server log', internal: true });
  });
});

describe('the same failure over REST and gRPC', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let srv: SecureServer;
  let client: grpc.Client;

  beforeAll(async () => {
    tmp = await tempDir('mlctl-errs-');
    const root = path.join(tmp.dir, 'models');
    await tinyPackage(root, { name: 'tiny' });
    srv = await startSecureServer(root, { grpcPort: 0 });
    const Client = predictV2Service();
    client = new Client(`127.0.0.1:${srv.grpcPort}`, grpc.credentials.createInsecure());
  });

  afterAll(async () => {
    client?.close();
    await srv?.close();
    await tmp?.cleanup();
  });

  function grpcError(method: string, req: Record<string, unknown>): Promise<grpc.ServiceError> {
    return new Promise((resolve, reject) => {
      (client as any)[method](req, new grpc.Metadata(), { deadline: Date.now() + 20_000 }, (err: grpc.ServiceError | null) => (err ? resolve(err) : reject(new Error(`${method} succeeded`))));
    });
  }

  it('an unknown model: 404 MODEL_NOT_FOUND over REST, NOT_FOUND over gRPC', async () => {
    const res = await fetch(`${srv.url}/v2/models/nope/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: [1] }] }) });
    const body = await res.json();
    expect(res.status).toBe(ERRORS.MODEL_NOT_FOUND.http);
    expect(body).toMatchObject({ code: 'MODEL_NOT_FOUND', error: expect.stringMatching(/model nope is not loaded/) });
    const g = await grpcError('ModelInfer', { model_name: 'nope', inputs: [{ name: 'x', datatype: 'FP32', shape: [1], contents: { fp32_contents: [1] } }] });
    expect(g.code).toBe(grpc.status.NOT_FOUND);
    expect(g.code).toBe(GRPC_STATUS[ERRORS.MODEL_NOT_FOUND.grpc]);
  });

  it('a malformed request: 400 INPUT_INVALID over REST, INVALID_ARGUMENT over gRPC', async () => {
    const res = await fetch(`${srv.url}/v2/models/tiny/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [1] }] }) });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: 'INPUT_INVALID' });
    const g = await grpcError('ModelInfer', { model_name: 'tiny', inputs: [] });
    expect(g.code).toBe(GRPC_STATUS[ERRORS.INPUT_INVALID.grpc]);
    expect(g.details).toBe('the request has no inputs');
  });

  it('an unreadable Content-Type: 415 UNSUPPORTED_MEDIA_TYPE, keeping the {"error"} body V2 clients read', async () => {
    const res = await fetch(`${srv.url}/v2/models/tiny/infer`, { method: 'POST', headers: { 'content-type': 'text/csv' }, body: 'a,b' });
    expect(res.status).toBe(415);
    const body = (await res.json()) as { code: string; error: string };
    expect(body.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(body.error).toMatch(/unsupported Content-Type "text\/csv"/);
  });
});

describe('gates in --json (real commands)', () => {
  let tmp: MlctlHome;
  let data: string;
  const run = (...args: string[]) => runCli([...args, '--backend', 'cpu', '--json']);

  beforeAll(async () => {
    tmp = await mlctlHome('mlctl-gates-');
    data = path.join(tmp.dir, 'colours');
    await fragileColours(tmp.artifacts, data);
  });

  afterAll(() => tmp?.cleanup());

  it('evaluate: a failed gate is ok:false, GATE_FAILED, exit 3, with every result field kept', async () => {
    const passed = await run('evaluate', 'colours', '--data', data, '--split', 'all', '--min-accuracy', '1', '--latency-runs', '0');
    expect(passed.code).toBe(0);
    expect(passed.json).toMatchObject({ ok: true, gatesPassed: true });
    expect(passed.json.error).toBeUndefined();
    const r = await run('evaluate', 'colours', '--data', data, '--split', 'all', '--max-latency-ms', '0', '--latency-runs', '2');
    expect(r.code).toBe(3);
    expect(r.json).toMatchObject({ ok: false, command: 'evaluate', exitCode: 3, gatesPassed: false, error: { code: 'GATE_FAILED' } });
    expect(r.json.error.message).toMatch(/^1 gate\(s\) failed: colours v1: .* is above --max-latency-ms 0 by /);
    expect(r.json.results[0].metrics.accuracy).toBe(1);
    expect(r.stderr).toMatch(/gate failed: /);
  });

  it('quantize: a step over --max-accuracy-drop is kept as rejected and reported as GATE_FAILED (exit 3)', async () => {
    const r = await run('quantize', 'colours', '--dtype', 'uint8', '--data', data, '--max-accuracy-drop', '0.01', '--latency-runs', '0');
    expect(r.code).toBe(3);
    expect(r.json).toMatchObject({ ok: false, command: 'quantize', exitCode: 3, status: 'rejected', dtype: 'uint8', package: { name: 'colours', version: 2 }, error: { code: 'GATE_FAILED' } });
    expect(r.json.error.message).toMatch(/^colours v2 rejected: /);
    // The drop and the allowance in one unit: points, with the flag as given.
    expect(r.json.error.message).toMatch(/dropped from 100\.00% to \d+\.\d\d%, \d+\.\d\d points; --max-accuracy-drop 0\.01 allows 1\.00 point$/);
    expect(r.json.before.accuracy).toBe(1);
    expect(r.json.after.accuracy).toBeLessThan(0.5);
    // The rejected package is evaluated as what it is: a failing accuracy gate, in the same document shape.
    const e = await run('evaluate', 'colours@2', '--data', data, '--split', 'all', '--min-accuracy', '0.9', '--latency-runs', '0');
    expect(e.code).toBe(3);
    expect(e.json).toMatchObject({ ok: false, error: { code: 'GATE_FAILED', message: expect.stringMatching(/below --min-accuracy 0\.9/) } });
  });
});
