// mlctl serve with tabular (classic) packages: JSON rows (arrays, feature-keyed objects or raw column values with
// categories) on /predict, FP32 rows on V2, labels for classifiers only; images and unknown categories get a clear 400.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { TabularInputSpec } from '../src/artifacts/manifest.js';
import { loadPackage } from '../src/artifacts/package.js';
import { trainClassic } from '../src/classic/train.js';
import { encodeObjects, type TabularEncoding } from '../src/data/csv.js';
import { openEngine } from '../src/runtime/engine.js';
import { createMemoryLogger } from '../src/util/log.js';
import { createRepository } from '../src/serve/repository.js';
import type { FastifyInstance } from 'fastify';
import { buildServer } from '../src/serve/server.js';
import { tempDir } from './helpers/fixtures.js';
import { runFloat } from '../src/runtime/float.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let app: FastifyInstance;
let root: string;

const post = async (url: string, body: unknown) => {
  const res = await app.inject({ method: 'POST', url, payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  return { status: res.statusCode, json: res.json() as any };
};

beforeAll(async () => {
  tmp = await tempDir('mlctl-serve-tab-');
  // Two well-separated classes in (x1, x2): "low" near (0, 0), "high" near (4, 4); y = 2*x1 - x2 for regression.
  const lines = ['x1,x2,label,y'];
  for (let i = 0; i < 60; i++) {
    const j = (i % 7) / 10;
    lines.push(`${j},${0.3 - j},low,${2 * j - (0.3 - j)}`, `${4 + j},${4 - j},high,${2 * (4 + j) - (4 - j)}`);
  }
  const csv = path.join(tmp.dir, 'points.csv');
  await fs.writeFile(csv, lines.join('\n') + '\n');
  // A categorical column: the fruit follows the colour, the weight only roughly.
  const fruit = ['weight,color,fruit'];
  for (let i = 0; i < 60; i++) fruit.push(`${100 + (i % 9) * 5},${['red', 'yellow', 'green'][i % 3]},${['apple', 'banana', 'lime'][i % 3]}`);
  const fruitCsv = path.join(tmp.dir, 'fruit.csv');
  await fs.writeFile(fruitCsv, fruit.join('\n') + '\n');
  root = path.join(tmp.dir, 'models');
  const logger = createMemoryLogger();
  await trainClassic({ model: 'logistic', name: 'points', data: csv, target: 'label', ignore: ['y'], root, logger, onnx: false, validationSplit: 0.2, seed: 1 });
  await trainClassic({ model: 'logistic', name: 'fruit', data: fruitCsv, target: 'fruit', root, logger, onnx: false, validationSplit: 0.2, seed: 1 });
  await trainClassic({ model: 'linear', name: 'line', data: csv, target: 'y', ignore: ['label'], root, logger, onnx: false, validationSplit: 0.2, seed: 1 });
  const repo = createRepository({ maxBatch: 4, maxDelayMs: 1 });
  await repo.load(root);
  app = buildServer(repo, { logger: false });
  await app.ready();
});

afterAll(async () => {
  await app?.close();
  await tmp?.cleanup();
});

describe('tabular packages', () => {
  it('answers JSON rows as arrays or feature-keyed objects, with labels for the classifier', async () => {
    const r = await post(`/predict?model=points`, { instances: [[0.1, 0.2], { x2: 4.1, x1: 3.9 }] });
    expect(r.status).toBe(200);
    expect(r.json.predictions).toHaveLength(2);
    expect(r.json.labels[0][0].label).toBe('low');
    expect(r.json.labels[1][0].label).toBe('high');
    const bad = await post(`/predict?model=points`, { instances: [{ x1: 1, colour: 2 }] });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatch(/unknown feature\(s\) colour/);
  });

  it('serves regression values without labels and V2 FP32 rows', async () => {
    const r = await post(`/predict?model=line`, { instances: [{ x1: 1, x2: 0.5 }] });
    expect(r.status).toBe(200);
    expect(r.json.labels).toBeUndefined();
    expect(r.json.predictions[0][0]).toBeCloseTo(1.5, 1);
    const meta = (await app.inject({ method: 'GET', url: '/v2/models/points' })).json() as any;
    expect(meta.inputs[0].shape).toEqual([-1, 2]);
    const v2 = await post(`/v2/models/points/infer`, { inputs: [{ name: meta.inputs[0].name, shape: [1, 2], datatype: 'FP32', data: [4, 4] }] });
    expect(v2.status).toBe(200);
    expect(v2.json.outputs[0].shape).toEqual([1, 2]);
    const img = await post(`/v2/models/points/infer`, { inputs: [{ name: 'image', shape: [1], datatype: 'BYTES', data: ['aGVsbG8='] }] });
    expect(img.status).toBe(400);
    expect(img.json.error).toMatch(/tabular rows/);
  });

  it('encodes objects of raw column values with the package\'s categories, and refuses unknown or missing ones', async () => {
    const rows = [{ weight: 105, color: 'yellow' }, { color: 'green', weight: 130 }, { weight: '120', color: 'red' }];
    const r = await post(`/predict?model=fruit`, { instances: rows });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(r.json.labels.map((l: Array<{ label: string }>) => l[0]!.label)).toEqual(['banana', 'lime', 'apple']);
    // The same numbers as the engine on rows encoded independently, and as already-encoded feature objects.
    const pkg = await loadPackage(path.join(root, 'fruit', '1'));
    const input = pkg.manifest.input as TabularInputSpec;
    expect(input.features).toEqual(['weight', 'color=green', 'color=red', 'color=yellow']);
    const engine = await openEngine(pkg);
    const want = await runFloat(engine, encodeObjects(rows, (input.transform as { encoding: TabularEncoding }).encoding), rows.length);
    await engine.dispose();
    r.json.predictions.flat().forEach((v: number, i: number) => expect(v).toBeCloseTo(want[i]!, 6));
    const encoded = await post(`/predict?model=fruit`, { instances: [{ weight: 105, 'color=yellow': 1, 'color=red': 0, 'color=green': 0 }] });
    expect(encoded.status).toBe(200);
    encoded.json.predictions[0].forEach((v: number, i: number) => expect(v).toBeCloseTo(want[i]!, 6));

    const unknown = await post(`/predict?model=fruit`, { instances: [{ weight: 100, color: 'red' }, { weight: 100, color: 'purple' }] });
    expect(unknown.status).toBe(400);
    expect(unknown.json.error).toMatch(/model fruit: instance 1, column "color": unknown category "purple" \(known: green, red, yellow\)/);
    const missing = await post(`/predict?model=fruit`, { instances: [{ weight: 100 }] });
    expect(missing.status).toBe(400);
    expect(missing.json.error).toMatch(/instance 0 has no value for column "color"/);
    const notNumber = await post(`/predict?model=fruit`, { instances: [{ weight: 'heavy', color: 'red' }] });
    expect(notNumber.status).toBe(400);
    expect(notNumber.json.error).toMatch(/"weight": "heavy" is not a number/);
    const extra = await post(`/predict?model=fruit`, { instances: [{ weight: 100, color: 'red', shape: 'round' }] });
    expect(extra.status).toBe(400);
    expect(extra.json.error).toMatch(/unknown feature\(s\) shape; the model's columns are weight, color/);
  });
});
