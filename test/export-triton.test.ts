// mlctl export --format triton: config.pbtxt parsed back against the protobuf text-format grammar and Triton's
// ModelConfig schema, the versioned model.onnx run by onnxruntime-node, and the repository layout Triton loads.
import * as ort from 'onnxruntime-node';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadedPackage } from '../src/artifacts/package.js';
import { MlctlError } from '../src/errors.js';
import { exportModel } from '../src/export/index.js';
import { parseTextFormat, TextFormatError, toTextFormat } from '../src/triton/pbtxt.js';
import { tritonModelConfigType } from '../src/triton/model-config-proto.js';
import { trainClassic } from '../src/classic/train.js';
import { openEngine } from '../src/runtime/engine.js';
import { createMemoryLogger } from '../src/util/log.js';
import { tempDir, tinyPackage } from './helpers/fixtures.js';
import { runFloat } from '../src/runtime/float.js';

const SIZE = 32;
let root: string;
let cleanup: () => Promise<void>;
let pkg: LoadedPackage;
let repo: string;

interface Config {
  name: string;
  platform: string;
  max_batch_size: number;
  input: Array<{ name: string; data_type: string; format?: string; dims: number[] }>;
  output: Array<{ name: string; data_type: string; dims: number[]; label_filename?: string }>;
  dynamic_batching: { preferred_batch_size: number[]; max_queue_delay_microseconds: number };
  instance_group: Array<{ count: number; kind: string }>;
}

beforeAll(async () => {
  ({ dir: root, cleanup } = await tempDir('mlctl-triton-'));
  pkg = await tinyPackage(path.join(root, 'artifacts'), { size: SIZE, labels: ['cat', 'dog', 'bird', 'fish'] });
  repo = path.join(root, 'model_repository');
  await exportModel(pkg, { format: 'triton', out: repo, maxBatch: 16, queueDelayUs: 2500, instances: 2 });
});
afterAll(() => cleanup());

describe('export --format triton', () => {
  it('lays out <repo>/<name>/config.pbtxt, <version>/model.onnx and labels.txt', async () => {
    const dir = path.join(repo, 'tiny');
    expect((await fs.readdir(dir)).sort()).toEqual(['1', 'config.pbtxt', 'labels.txt', 'metadata.json']);
    expect(await fs.readdir(path.join(dir, '1'))).toEqual(['model.onnx']);
    expect((await fs.readFile(path.join(dir, 'labels.txt'), 'utf8')).split('\n').filter(Boolean)).toEqual(pkg.manifest.labels);
    const meta = JSON.parse(await fs.readFile(path.join(dir, 'metadata.json'), 'utf8')) as { source: { manifestSha256: string; files: unknown } };
    expect(meta.source.manifestSha256).toBe(pkg.manifestSha256);
    expect(meta.source.files).toEqual(pkg.manifest.files);
  });

  it('config.pbtxt parses back against ModelConfig with every field as Triton needs it', async () => {
    const dir = path.join(repo, 'tiny');
    const text = await fs.readFile(path.join(dir, 'config.pbtxt'), 'utf8');
    const type = tritonModelConfigType();
    const cfg = parseTextFormat(type, text) as unknown as Config;
    // The object is a valid ModelConfig message: it survives a binary protobuf round trip unchanged.
    const round = type.toObject(type.decode(type.encode(type.fromObject(cfg as never)).finish()), { enums: String, longs: Number });
    expect(round).toEqual(cfg);

    const session = await ort.InferenceSession.create(path.join(dir, '1', 'model.onnx'));
    expect(cfg.name).toBe('tiny');
    expect(cfg.platform).toBe('onnxruntime_onnx');
    expect(cfg.max_batch_size).toBe(16);
    expect(cfg.input).toEqual([{ name: session.inputNames[0], data_type: 'TYPE_FP32', format: 'FORMAT_NHWC', dims: [SIZE, SIZE, 3] }]);
    expect(cfg.output).toEqual([{ name: session.outputNames[0], data_type: 'TYPE_FP32', dims: [4], label_filename: 'labels.txt' }]);
    expect(existsSync(path.join(dir, cfg.output[0]!.label_filename!))).toBe(true);
    expect(cfg.dynamic_batching.max_queue_delay_microseconds).toBe(2500);
    expect(cfg.dynamic_batching.preferred_batch_size.length).toBeGreaterThan(0);
    for (const b of cfg.dynamic_batching.preferred_batch_size) expect(b).toBeLessThanOrEqual(cfg.max_batch_size);
    expect(cfg.instance_group).toEqual([{ count: 2, kind: 'KIND_CPU' }]);
    await session.release();
  });

  it('model.onnx takes a dynamic batch and predicts as mlctl does', async () => {
    const session = await ort.InferenceSession.create(path.join(repo, 'tiny', '1', 'model.onnx'));
    const batch = 5;
    const x = Float32Array.from({ length: batch * SIZE * SIZE * 3 }, (_, i) => ((i * 7919) % 255) - 120);
    const y = (await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', x, [batch, SIZE, SIZE, 3]) }))[session.outputNames[0]!]!;
    expect(y.dims).toEqual([batch, 4]);
    const engine = await openEngine(pkg, { engine: 'tfjs' });
    const ours = await runFloat(engine, x, batch);
    await engine.dispose();
    (y.data as Float32Array).forEach((v, i) => expect(v).toBeCloseTo(ours[i]!, 5));
    await session.release();
  });

  it('adds a model to an existing repository, and guards only that model with --force', async () => {
    await exportModel(pkg, { format: 'triton', out: repo, name: 'tiny-b', version: 7 });
    expect(existsSync(path.join(repo, 'tiny', 'config.pbtxt'))).toBe(true);
    expect(existsSync(path.join(repo, 'tiny-b', '7', 'model.onnx'))).toBe(true);
    const cfg = parseTextFormat(tritonModelConfigType(), await fs.readFile(path.join(repo, 'tiny-b', 'config.pbtxt'), 'utf8'));
    expect(cfg.name).toBe('tiny-b');
    const again = await exportModel(pkg, { format: 'triton', out: repo }).catch((e: unknown) => e);
    expect((again as MlctlError).code).toBe('PACKAGE_EXISTS');
    const bad = await exportModel(pkg, { format: 'triton', out: repo, name: '../escape' }).catch((e: unknown) => e);
    expect((bad as MlctlError).code).toBe('MODEL_NAME_INVALID');
  });
});

describe('export --format triton for a tabular package', () => {
  it("uses the package's own ONNX model: feature dims, no image format, labels, and it runs", async () => {
    const rows = ['x1,x2,cls'];
    for (let i = 0; i < 60; i++) {
      const a = ((i * 37) % 17) / 17;
      const b = ((i * 11) % 13) / 13;
      rows.push(`${a},${b},${a + b > 1 ? 'high' : 'low'}`);
    }
    await fs.writeFile(path.join(root, 'tab.csv'), rows.join('\n') + '\n');
    const { pkg: tab } = await trainClassic({ model: 'logistic', name: 'tab', data: path.join(root, 'tab.csv'), target: 'cls', root: path.join(root, 'artifacts'), logger: createMemoryLogger(), onnx: true });
    expect(tab.manifest.formats.onnx).toBeDefined();
    const res = await exportModel(tab, { format: 'triton', out: repo });
    expect(res.details).toMatchObject({ origin: 'package' });
    const cfg = parseTextFormat(tritonModelConfigType(), await fs.readFile(path.join(repo, 'tab', 'config.pbtxt'), 'utf8')) as unknown as Config;
    expect(cfg.input).toEqual([{ name: tab.manifest.input.name, data_type: 'TYPE_FP32', dims: [2] }]);
    expect(cfg.output).toEqual([{ name: tab.manifest.output.name, data_type: 'TYPE_FP32', dims: [tab.manifest.labels.length], label_filename: 'labels.txt' }]);
    expect((await fs.readFile(path.join(repo, 'tab', 'labels.txt'), 'utf8')).trim().split('\n')).toEqual(tab.manifest.labels);
    const session = await ort.InferenceSession.create(path.join(repo, 'tab', '1', 'model.onnx'));
    const y = (await session.run({ [cfg.input[0]!.name]: new ort.Tensor('float32', Float32Array.from([0, 0, 1, 1, -1, 2]), [3, 2]) }))[cfg.output[0]!.name]!;
    expect(y.dims).toEqual([3, 2]);
    for (let r = 0; r < 3; r++) expect((y.data as Float32Array)[r * 2]! + (y.data as Float32Array)[r * 2 + 1]!).toBeCloseTo(1, 5);
    await session.release();
  });
});

describe('protobuf text format', () => {
  const type = tritonModelConfigType();
  const parse = (t: string) => parseTextFormat(type, t);

  it('accepts the grammar Triton configs use: comments, <> and {} messages, lists, separators, escapes', () => {
    const cfg = parse(`# comment
      name: 'a\\'b' "c\\n\\101"  # adjacent strings concatenate
      max_batch_size: 0x10;
      input < name: "x" data_type: TYPE_FP32 dims: [ -1, 3 ] >,
      input { name: "y", data_type: 2, dims: 4 dims: 5 }
      instance_group [ { kind: KIND_GPU gpus: [0, 1] }, { count: 2 kind: KIND_CPU } ]
      dynamic_batching { preserve_ordering: true }`);
    expect(cfg).toEqual({
      name: "a'bc\nA",
      max_batch_size: 16,
      input: [
        { name: 'x', data_type: 'TYPE_FP32', dims: [-1, 3] },
        { name: 'y', data_type: 'TYPE_UINT8', dims: [4, 5] },
      ],
      instance_group: [{ kind: 'KIND_GPU', gpus: [0, 1] }, { count: 2, kind: 'KIND_CPU' }],
      dynamic_batching: { preserve_ordering: true },
    });
  });

  it.each([
    ['unknown field', 'nmae: "x"', /no field "nmae"/],
    ['bad enum name', 'input { data_type: TYPE_FLOAT32 }', /not a DataType value/],
    ['scalar without colon', 'name "x"', /needs ":"/],
    ['singular field twice', 'name: "a" name: "b"', /more than once/],
    ['list for a singular field', 'max_batch_size: [1, 2]', /not a repeated field/],
    ['string for an int', 'max_batch_size: "8"', /expected an integer/],
    ['unclosed message', 'dynamic_batching { max_queue_delay_microseconds: 5', /missing "}"/],
    ['negative unsigned', 'dynamic_batching { max_queue_delay_microseconds: -5 }', /cannot be negative/],
    ['stray character', 'name: "x" @', /unexpected character/],
  ])('rejects %s', (_what, text, message) => {
    expect(() => parse(text)).toThrow(TextFormatError);
    expect(() => parse(text)).toThrow(message);
  });

  it('writes what it parses: text → object → text is stable, and odd strings survive', () => {
    const obj = { name: 'naïve "model"\\\n', max_batch_size: 4, input: [{ name: 'in', data_type: 'TYPE_FP16', dims: [1, 2] }], dynamic_batching: {} };
    const text = toTextFormat(type, obj);
    expect(parse(text)).toEqual(obj);
    expect(toTextFormat(type, parse(text))).toBe(text);
    expect(() => toTextFormat(type, { bogus: 1 })).toThrow(/no field "bogus"/);
    expect(() => toTextFormat(type, { input: [{ data_type: 'TYPE_NOPE' }] })).toThrow(/not a DataType value/);
  });
});
