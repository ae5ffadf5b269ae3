// Triton's gRPC extensions of inference.GRPCInferenceService as tritonclient.grpc speaks them: ModelConfig,
// ModelStatistics, RepositoryIndex, RepositoryModelLoad/Unload, the bidirectional ModelStreamInfer, the
// classification parameter, and grpc.health.v1 Watch/List. The clients are compiled from the owners' files
// (test/fixtures/protos: triton-inference-server/common grpc_service.proto + model_config.proto, grpc-proto
// health.proto), the server's embedded schema is checked field by field against them, and key responses are also
// read off the wire with a decoder that knows only field numbers.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HEALTH_PROTO, inferenceRoot } from '../src/serve/grpc/proto.js';
import { json, pngOf, startSecureServer, type SecureServer } from './serve-security-helpers.js';
import { tempDir, tinyPackage } from './helpers/fixtures.js';

const PROTOS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'protos');
const UPSTREAM_FILES = ['grpc_service.proto', 'health.proto'];

/** Client constructors compiled from the upstream files, as tritonclient's and grpc-health-probe's stubs are. */
function upstreamClients(): { V2: grpc.ServiceClientConstructor; Health: grpc.ServiceClientConstructor } {
  const def = protoLoader.loadSync(UPSTREAM_FILES, { includeDirs: [PROTOS], keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { inference: { GRPCInferenceService: grpc.ServiceClientConstructor }; grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } };
  return { V2: pkg.inference.GRPCInferenceService, Health: pkg.grpc.health.v1.Health };
}

/** The upstream files as one protobufjs root (model_config.proto resolved beside grpc_service.proto). */
function upstreamRoot(): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => path.join(PROTOS, path.basename(target));
  root.loadSync(UPSTREAM_FILES, { keepCase: true });
  root.resolveAll();
  return root;
}

/**
 * Every message field, enum value and rpc the server declares, compared with upstream's by name: field number,
 * type, repeated/map, oneof; enum numbers; request/response types and streaming. Returns the disagreements.
 */
function schemaDiff(ours: protobuf.Root, up: protobuf.Root): { checked: number; diffs: string[] } {
  const diffs: string[] = [];
  let checked = 0;
  const visit = (ns: protobuf.NamespaceBase) => {
    for (const o of ns.nestedArray) {
      const name = o.fullName.replace(/^\./, '');
      const u = up.lookup(name);
      if (o instanceof protobuf.Type) {
        if (!(u instanceof protobuf.Type)) diffs.push(`${name}: no such message upstream`);
        else {
          for (const f of o.fieldsArray) {
            checked++;
            const g = u.fields[f.name];
            const sig = (x: protobuf.Field) => `${x.id} ${x.map ? `map<${(x as unknown as protobuf.MapField).keyType}, ${x.type}>` : x.type}${x.repeated ? '[]' : ''}${x.partOf ? ` oneof ${x.partOf.name}` : ''}`;
            if (!g) diffs.push(`${name}.${f.name}: no such field upstream`);
            else if (sig(f) !== sig(g)) diffs.push(`${name}.${f.name}: ours ${sig(f)}, upstream ${sig(g)}`);
          }
        }
      } else if (o instanceof protobuf.Enum) {
        if (!(u instanceof protobuf.Enum)) diffs.push(`${name}: no such enum upstream`);
        else for (const [k, v] of Object.entries(o.values)) if ((checked++, u.values[k] !== v)) diffs.push(`${name}.${k}: ours ${v}, upstream ${u.values[k]}`);
      } else if (o instanceof protobuf.Service) {
        if (!(u instanceof protobuf.Service)) diffs.push(`${name}: no such service upstream`);
        else {
          for (const m of o.methodsArray) {
            checked++;
            const g = u.methods[m.name];
            const sig = (x: protobuf.Method) => `${x.requestStream ? 'stream ' : ''}${x.resolvedRequestType?.fullName.slice(1)} → ${x.responseStream ? 'stream ' : ''}${x.resolvedResponseType?.fullName.slice(1)}`;
            if (!g) diffs.push(`${name}.${m.name}: no such rpc upstream`);
            else if (sig(m) !== sig(g)) diffs.push(`${name}.${m.name}: ours ${sig(m)}, upstream ${sig(g)}`);
          }
        }
      }
      if (o instanceof protobuf.Namespace) visit(o);
    }
  };
  visit(ours);
  return { checked, diffs };
}

type Obj = any; // decoded messages are checked field by field

/** A protobuf message off the wire: field number → values (varints as bigint, length-delimited as Buffer). */
function wire(buf: Buffer): Map<number, Array<bigint | Buffer>> {
  const out = new Map<number, Array<bigint | Buffer>>();
  let i = 0;
  const varint = () => {
    let v = 0n;
    for (let shift = 0n; ; shift += 7n) {
      const b = buf[i++]!;
      v |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
  };
  while (i < buf.length) {
    const tag = Number(varint());
    const field = tag >>> 3;
    const type = tag & 7;
    let value: bigint | Buffer;
    if (type === 0) value = varint();
    else if (type === 2) {
      const n = Number(varint());
      value = buf.subarray(i, i + n);
      i += n;
    } else if (type === 1) {
      value = buf.readBigUInt64LE(i);
      i += 8;
    } else if (type === 5) {
      value = BigInt(buf.readUInt32LE(i));
      i += 4;
    } else throw new Error(`wire type ${type} at ${i}`);
    out.set(field, [...(out.get(field) ?? []), value]);
  }
  return out;
}
/** A packed repeated varint field (proto3's default for repeated scalars). */
function packedVarints(buf: Buffer): number[] {
  const out: number[] = [];
  for (let i = 0; i < buf.length; ) {
    let v = 0n;
    for (let shift = 0n; ; shift += 7n) {
      const b = buf[i++]!;
      v |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) break;
    }
    out.push(Number(BigInt.asIntN(64, v)));
  }
  return out;
}
const one = (m: Map<number, Array<bigint | Buffer>>, f: number) => m.get(f)?.[0];
const str = (m: Map<number, Array<bigint | Buffer>>, f: number) => (one(m, f) as Buffer | undefined)?.toString('utf8') ?? '';
const num = (m: Map<number, Array<bigint | Buffer>>, f: number) => Number((one(m, f) as bigint | undefined) ?? 0n);
const msg = (m: Map<number, Array<bigint | Buffer>>, f: number) => wire((one(m, f) as Buffer | undefined) ?? Buffer.alloc(0));
const msgs = (m: Map<number, Array<bigint | Buffer>>, f: number) => (m.get(f) ?? []).map((b) => wire(b as Buffer));

/** A protobuf encoder for requests, by field number: strings/bytes (2), varints (0), nested messages (2). */
function encode(fields: Array<[number, string | number | boolean | Buffer]>): Buffer {
  const parts: Buffer[] = [];
  const varint = (v: number) => {
    const b: number[] = [];
    while (v > 0x7f) {
      b.push((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    b.push(v);
    return Buffer.from(b);
  };
  for (const [f, v] of fields) {
    if (typeof v === 'number' || typeof v === 'boolean') parts.push(varint(f << 3), varint(Number(v)));
    else {
      const data = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
      parts.push(varint((f << 3) | 2), varint(data.length), data);
    }
  }
  return Buffer.concat(parts);
}

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;
let s: SecureServer;
let client: grpc.Client;
let V2: grpc.ServiceClientConstructor;
let Health: grpc.ServiceClientConstructor;

/** A unary call with raw bytes both ways (the request encoded by field number, the response decoded by field number). */
function raw(method: string, request: Buffer): Promise<Map<number, Array<bigint | Buffer>>> {
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(`/inference.GRPCInferenceService/${method}`, (b: Buffer) => b, (b: Buffer) => b, request, (err, res) => (err ? reject(err) : resolve(wire(res as Buffer)))),
  );
}
/** The same call through the client compiled from upstream's grpc_service.proto. */
function typed<T = Obj>(method: string, request: Obj): Promise<T> {
  return new Promise((resolve, reject) => (client as unknown as Record<string, (r: Obj, cb: (e: grpc.ServiceError | null, v: T) => void) => void>)[method]!.call(client, request, (e, v) => (e ? reject(e) : resolve(v))));
}
const x = (n: number) => Array.from({ length: n * 32 * 32 * 3 }, (_, i) => ((i * 31) % 200) - 100);

beforeAll(async () => {
  tmp = await tempDir('mlctl-interop-grpc-');
  root = path.join(tmp.dir, 'models');
  await tinyPackage(root, { name: 'tiny', seed: 1, labels: ['cat', 'dog', 'bird'] });
  await tinyPackage(root, { name: 'tiny', seed: 2, labels: ['cat', 'dog', 'bird'] });
  s = await startSecureServer(root, { grpcPort: 0, allowModelControl: true }, { maxBatch: 4, maxDelayMs: 20 });
  ({ V2, Health } = upstreamClients());
  client = new V2(`127.0.0.1:${s.grpcPort}`, grpc.credentials.createInsecure());
}, 120_000);
afterAll(async () => {
  client?.close();
  await s?.close();
  await tmp?.cleanup();
});

describe('Triton gRPC extensions (field numbers from grpc_service.proto / model_config.proto)', () => {
  it("the server's schema is upstream's: every field number and type, enum value and rpc it declares", () => {
    const ours = inferenceRoot();
    protobuf.parse(HEALTH_PROTO, ours, { keepCase: true });
    ours.resolveAll();
    const { checked, diffs } = schemaDiff(ours, upstreamRoot());
    expect(diffs).toEqual([]);
    // The V2 core, Triton's extensions, the ModelConfig subset and grpc.health.v1: well over a hundred fields.
    expect(checked).toBeGreaterThan(150);
    // and the check bites: a renumbered field is reported
    const bent = inferenceRoot();
    bent.lookupType('inference.ModelStatistics').fields['inference_count']!.id = 40;
    expect(schemaDiff(bent, upstreamRoot()).diffs).toEqual(['inference.ModelStatistics.inference_count: ours 40 uint64, upstream 4 uint64']);
  });

  it('ModelMetadata lists the BYTES image input beside the FP32 tensor, and ModelInfer takes encoded images by it', async () => {
    const meta = await typed('ModelMetadata', { name: 'tiny', version: '1' });
    expect(meta.inputs).toEqual([
      { name: 'input', datatype: 'FP32', shape: [-1, 32, 32, 3] },
      { name: 'image', datatype: 'BYTES', shape: [-1] },
    ]);
    // ModelMetadataResponse.inputs = 4, TensorMetadata {name 1, datatype 2, shape 3}.
    const wireInputs = msgs(await raw('ModelMetadata', encode([[1, 'tiny']])), 4).map((t) => [str(t, 1), str(t, 2)]);
    expect(wireInputs).toEqual([['input', 'FP32'], ['image', 'BYTES']]);
    const png = await pngOf(30, 120, 210);
    const res = await typed('ModelInfer', { model_name: 'tiny', model_version: '1', inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], contents: { bytes_contents: [png] } }] });
    expect(res.outputs[0]).toMatchObject({ name: 'predictions', datatype: 'FP32', shape: [1, 3] });
    expect((res.outputs[0].contents.fp32_contents as number[]).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
  });

  it('ModelConfig: ModelConfigResponse.config (1) = the ModelConfig GET …/config answers', async () => {
    // ModelConfigRequest: name = 1, version = 2.
    const res = await raw('ModelConfig', encode([[1, 'tiny'], [2, '1']]));
    const config = msg(res, 1);
    // ModelConfig: name 1, platform 2, max_batch_size 4, input 5 {name 1, data_type 2, format 3, dims 4}, output 6
    // {name 1, data_type 2, dims 3, label_filename 4}, dynamic_batching 11 {preferred_batch_size 1,
    // max_queue_delay_microseconds 2}, instance_group 7 {count 2, kind 4}, parameters 14 (map entries key 1, value 2 {string_value 1}).
    expect(str(config, 1)).toBe('tiny');
    expect(num(config, 4)).toBe(4);
    const [input] = msgs(config, 5);
    expect(str(input!, 1)).toBe('input');
    expect(num(input!, 2)).toBe(11); // TYPE_FP32
    expect(num(input!, 3)).toBe(1); // FORMAT_NHWC
    expect(packedVarints(one(input!, 4) as Buffer)).toEqual([32, 32, 3]); // dims: repeated int64, packed
    const [output] = msgs(config, 6);
    expect(str(output!, 1)).toBe('predictions');
    expect(str(output!, 4)).toBe('labels.txt');
    expect(num(msg(config, 11), 2)).toBe(20_000);
    expect(num(msgs(config, 7)[0]!, 4)).toBe(2); // KIND_CPU
    const params = Object.fromEntries(msgs(config, 14).map((e) => [str(e, 1), str(msg(e, 2), 1)]));
    expect(params['mlctl.input_variant']).toBe('preprocessed');
    expect(JSON.parse(params['mlctl.labels']!)).toEqual(['cat', 'dog', 'bird']);
    const viaRest = await json(await fetch(`${s.url}/v2/models/tiny/versions/1/config`));
    expect((await typed('ModelConfig', { name: 'tiny', version: '1' })).config).toMatchObject({ name: viaRest.name, max_batch_size: viaRest.max_batch_size, input: viaRest.input, output: viaRest.output });
  });

  it('ModelStatistics: model_stats (1) with inference_count 4, execution_count 5, inference_stats 6, batch_stats 7', async () => {
    await Promise.all([1, 1, 2].map((n) => typed('ModelInfer', { model_name: 'tiny', model_version: '2', inputs: [{ name: 'input', datatype: 'FP32', shape: [n, 32, 32, 3], contents: { fp32_contents: x(n) } }] })));
    const res = await raw('ModelStatistics', encode([[1, 'tiny'], [2, '2']]));
    const [stat] = msgs(res, 1);
    expect(str(stat!, 1)).toBe('tiny');
    expect(str(stat!, 2)).toBe('2');
    expect(num(stat!, 4)).toBeGreaterThanOrEqual(4); // inference_count: examples
    expect(num(stat!, 5)).toBeGreaterThanOrEqual(1); // execution_count: batches
    expect(num(stat!, 3)).toBeGreaterThan(Date.now() - 60_000); // last_inference, ms since the epoch
    const inferStats = msg(stat!, 6);
    const success = msg(inferStats, 1); // StatisticDuration: count 1, ns 2
    expect(num(success, 1)).toBeGreaterThanOrEqual(3);
    expect(num(success, 2)).toBeGreaterThan(0);
    expect(num(msg(inferStats, 5), 1)).toBe(num(success, 1)); // compute_infer counts every successful request
    const batches = msgs(stat!, 7).map((b) => ({ size: num(b, 1), runs: num(msg(b, 3), 1) }));
    expect(batches.reduce((a, b) => a + b.size * b.runs, 0)).toBe(num(stat!, 4));
    // The typed view equals REST's JSON for the same version.
    const rest = (await json(await fetch(`${s.url}/v2/models/tiny/versions/2/stats`))).model_stats[0];
    const viaGrpc = (await typed('ModelStatistics', { name: 'tiny', version: '2' })).model_stats[0];
    expect(viaGrpc.inference_count).toBe(rest.inference_count);
    expect(viaGrpc.inference_stats.success.count).toBe(rest.inference_stats.success.count);
    // An empty name: every model.
    expect((await typed('ModelStatistics', { name: '' })).model_stats.map((m: Obj) => `${m.name}@${m.version}`)).toEqual(['tiny@1', 'tiny@2']);
    await expect(typed('ModelStatistics', { name: 'nope' })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it('classification over gRPC: parameters["classification"].int64_param → BYTES contents', async () => {
    // InferRequestedOutputTensor.parameters = map<string, InferParameter>, InferParameter.int64_param = 2.
    const res = await typed('ModelInfer', {
      model_name: 'tiny',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 32, 32, 3], contents: { fp32_contents: x(1) } }],
      outputs: [{ name: 'predictions', parameters: { classification: { int64_param: 3 } } }],
    });
    expect(res.outputs[0]).toMatchObject({ name: 'predictions', datatype: 'BYTES', shape: [1, 3] });
    const items = (res.outputs[0].contents.bytes_contents as Buffer[]).map((b) => b.toString('utf8'));
    expect(items.map((v) => v.split(':')[2]).sort()).toEqual(['bird', 'cat', 'dog']);
    const scores = items.map((v) => Number(v.split(':')[0]));
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
    expect(scores.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
  });

  it('RepositoryIndex (models 1: name 1, version 2, state 3, reason 4); load and unload with --allow-model-control', async () => {
    const res = await raw('RepositoryIndex', encode([[2, false]]));
    const models = msgs(res, 1).map((m) => ({ name: str(m, 1), version: str(m, 2), state: str(m, 3), reason: str(m, 4) }));
    expect(models).toEqual([
      { name: 'tiny', version: '1', state: 'READY', reason: '' },
      { name: 'tiny', version: '2', state: 'READY', reason: '' },
    ]);
    await typed('RepositoryModelUnload', { model_name: 'tiny' });
    const after = (await typed('RepositoryIndex', {})).models;
    expect(after.map((m: Obj) => m.state)).toEqual(['UNAVAILABLE', 'UNAVAILABLE']);
    expect(after[0].reason).toBe('not loaded');
    expect((await typed('RepositoryIndex', { ready: true })).models).toEqual([]);
    // RepositoryModelLoadRequest: model_name = 2, parameters = 3 (map<string, ModelRepositoryParameter>).
    await typed('RepositoryModelLoad', { model_name: 'tiny', parameters: { version: { int64_param: 1 } } });
    expect((await typed('RepositoryIndex', { ready: true })).models.map((m: Obj) => m.version)).toEqual(['1']);
    await typed('RepositoryModelLoad', { model_name: 'tiny' });
    expect((await typed('RepositoryIndex', { ready: true })).models.map((m: Obj) => m.version)).toEqual(['1', '2']);
    await expect(typed('RepositoryModelLoad', { model_name: 'absent' })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it('ModelStreamInfer: one ModelStreamInferResponse per request, in order, errors in-stream (error_message 1, infer_response 2)', async () => {
    const stream = client.makeBidiStreamRequest('/inference.GRPCInferenceService/ModelStreamInfer', (b: Buffer) => b, (b: Buffer) => b);
    const got: Array<Map<number, Array<bigint | Buffer>>> = [];
    const done = new Promise<void>((resolve, reject) => {
      stream.on('data', (b: Buffer) => got.push(wire(b)));
      stream.on('end', () => resolve());
      stream.on('error', reject);
    });
    // ModelInferRequest: model_name 1, id 3, inputs 5 {name 1, datatype 2, shape 3 (packed int64), contents 5 {fp32_contents 6 packed}}.
    const tensor = (n: number, shape: number[]) => {
      const floats = Buffer.from(Float32Array.from(x(n)).buffer);
      const dims = Buffer.concat(shape.map((d) => encode([[1, d]]).subarray(1)));
      return encode([[1, 'input'], [2, 'FP32'], [3, dims], [5, encode([[6, floats]])]]);
    };
    const request = (id: string, model: string, n: number, shape: number[]) => encode([[1, model], [3, id], [5, tensor(n, shape)]]);
    stream.write(request('a', 'tiny', 1, [1, 32, 32, 3]));
    stream.write(request('b', 'nope', 1, [1, 32, 32, 3]));
    stream.write(request('c', 'tiny', 2, [2, 32, 32, 3]));
    stream.end();
    await done;
    expect(got).toHaveLength(3);
    const ids = got.map((m) => str(msg(m, 2), 3));
    expect(ids).toEqual(['a', 'b', 'c']);
    expect(got.map((m) => str(m, 1))).toEqual(['', expect.stringMatching(/nope/), '']);
    // ModelInferResponse: model_name 1, outputs 5 {name 1, datatype 2, shape 3}.
    const out = msgs(msg(got[2]!, 2), 5)[0]!;
    expect(str(out, 1)).toBe('predictions');
    expect(str(msg(got[0]!, 2), 1)).toBe('tiny');
  });

  it('ModelStreamInfer: a client writing far ahead of the engine is paced, not refused, and every answer comes back in order', async () => {
    const stream = client.makeBidiStreamRequest('/inference.GRPCInferenceService/ModelStreamInfer', (b: Buffer) => b, (b: Buffer) => b);
    const ids: string[] = [];
    const errors: string[] = [];
    const done = new Promise<void>((resolve, reject) => {
      stream.on('data', (b: Buffer) => {
        const m = wire(b);
        ids.push(str(msg(m, 2), 3));
        if (str(m, 1)) errors.push(str(m, 1));
      });
      stream.on('end', () => resolve());
      stream.on('error', reject);
    });
    const floats = Buffer.from(Float32Array.from(x(1)).buffer);
    const dims = Buffer.concat([1, 32, 32, 3].map((d) => encode([[1, d]]).subarray(1)));
    const tensor = encode([[1, 'input'], [2, 'FP32'], [3, dims], [5, encode([[6, floats]])]]);
    // 48 requests at once: six times the in-flight window of a --max-batch 4 server.
    const sent = Array.from({ length: 48 }, (_, i) => `r${i}`);
    for (const id of sent) stream.write(encode([[1, 'tiny'], [3, id], [5, tensor]]));
    stream.end();
    await done;
    expect(errors).toEqual([]);
    expect(ids).toEqual(sent);
  });

  it('grpc.health.v1 Watch streams SERVING, then each change: NOT_SERVING when nothing is loaded, SERVING again', async () => {
    const health = new Health(`127.0.0.1:${s.grpcPort}`, grpc.credentials.createInsecure());
    const call = health.Watch({ service: '' }) as grpc.ClientReadableStream<{ status: string }>;
    const seen: string[] = [];
    const waitFor = (status: string) =>
      new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no ${status} within 10 s; saw ${seen.join(', ')}`)), 10_000);
        const check = () => {
          if (seen[seen.length - 1] === status) {
            clearTimeout(t);
            call.off('data', check);
            resolve();
          }
        };
        call.on('data', check);
        check();
      });
    call.on('data', (m: { status: string }) => seen.push(m.status));
    call.on('error', () => {});
    await waitFor('SERVING');
    await typed('RepositoryModelUnload', { model_name: 'tiny' });
    await waitFor('NOT_SERVING');
    await typed('RepositoryModelLoad', { model_name: 'tiny' });
    await waitFor('SERVING');
    expect(seen).toEqual(['SERVING', 'NOT_SERVING', 'SERVING']);
    const other = health.Watch({ service: 'no.such.Service' }) as grpc.ClientReadableStream<{ status: string }>;
    other.on('error', () => {});
    const first = await new Promise<string>((resolve) => other.once('data', (m: { status: string }) => resolve(m.status)));
    expect(first).toBe('SERVICE_UNKNOWN');
    // List (grpc-proto health.proto): the server and the inference service, each with its status.
    const listed = await new Promise<Obj>((resolve, reject) => (health as unknown as Record<string, (r: Obj, cb: (e: unknown, v: Obj) => void) => void>).List!.call(health, {}, (e, v) => (e ? reject(e) : resolve(v))));
    expect(listed.statuses).toEqual({ '': { status: 'SERVING' }, 'inference.GRPCInferenceService': { status: 'SERVING' } });
    other.cancel();
    call.cancel();
    health.close();
  });

  it('shutting down tells watchers NOT_SERVING and ends their streams, so they do not hold up the drain', async () => {
    const health = new Health(`127.0.0.1:${s.grpcPort}`, grpc.credentials.createInsecure());
    const call = health.Watch({ service: '' }) as grpc.ClientReadableStream<{ status: string }>;
    const seen: string[] = [];
    // How the stream ended: the server ending it ('end', status OK) — not the drain timeout's forced shutdown, which
    // would cut it with an error (CANCELLED/UNAVAILABLE).
    const ended = new Promise<string>((resolve) => {
      call.on('data', (m: { status: string }) => seen.push(m.status));
      call.on('end', () => resolve('end'));
      call.on('error', (e: grpc.ServiceError) => resolve(`error ${grpc.status[e.code]}`));
    });
    const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    await new Promise<void>((resolve) => call.once('data', () => resolve()));
    await s.close();
    expect(await ended).toBe('end');
    expect((await status).code).toBe(grpc.status.OK);
    expect(seen).toEqual(['SERVING', 'NOT_SERVING']);
    health.close();
  });
});

describe('listings that name no model, with scoped API keys', () => {
  it('statistics and the repository index show a key only the models it may use (REST and gRPC)', async () => {
    const { promises: fs } = await import('node:fs');
    const dir = path.join(tmp.dir, 'scoped');
    await tinyPackage(dir, { name: 'tiny' });
    await tinyPackage(dir, { name: 'other', seed: 5 });
    const keys = path.join(tmp.dir, 'keys.txt');
    await fs.writeFile(keys, 'tiny:tiny-only-key-0123456789@tiny\nall:all-models-key-0123456789\n');
    const srv = await startSecureServer(dir, { grpcPort: 0, apiKeysFile: keys });
    const c = new V2(`127.0.0.1:${srv.grpcPort}`, grpc.credentials.createInsecure());
    try {
      const rest = async (p: string, key: string, method = 'GET') => json(await fetch(srv.url + p, { method, headers: { 'x-api-key': key } }));
      expect((await rest('/v2/models/stats', 'tiny-only-key-0123456789')).model_stats.map((m: Obj) => m.name)).toEqual(['tiny']);
      expect((await rest('/v2/models/stats', 'all-models-key-0123456789')).model_stats.map((m: Obj) => m.name)).toEqual(['other', 'tiny']);
      expect((await rest('/v2/repository/index', 'tiny-only-key-0123456789', 'POST')).map((m: Obj) => m.name)).toEqual(['tiny']);
      expect((await fetch(`${srv.url}/v2/models/stats`)).status).toBe(401);
      const call = (method: string, key: string, req: Obj) =>
        new Promise<Obj>((resolve, reject) => {
          const md = new grpc.Metadata();
          md.set('x-api-key', key);
          (c as unknown as Record<string, (r: Obj, m: grpc.Metadata, cb: (e: grpc.ServiceError | null, v: Obj) => void) => void>)[method]!.call(c, req, md, (e, v) => (e ? reject(e) : resolve(v)));
        });
      expect((await call('ModelStatistics', 'tiny-only-key-0123456789', { name: '' })).model_stats.map((m: Obj) => m.name)).toEqual(['tiny']);
      expect((await call('RepositoryIndex', 'tiny-only-key-0123456789', {})).models.map((m: Obj) => m.name)).toEqual(['tiny']);
      await expect(call('ModelStatistics', 'tiny-only-key-0123456789', { name: 'other' })).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    } finally {
      c.close();
      await srv.close();
    }
  });
});
