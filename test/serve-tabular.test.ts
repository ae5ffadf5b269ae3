// mlctl serve with tabular (classic) packages: JSON rows (arrays or feature-keyed objects) on /predict, FP32
// rows on V2, labels for classifiers only; images are refused with a clear 400.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { trainClassic } from '../src/classic/train.js';
import { createMemoryLogger } from '../src/util/log.js';
import { createRepository } from '../src/serve/repository.js';
import { startServer, type RunningServer } from '../src/serve/start.js';
import { tempDir } from './helpers/fixtures.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let server: RunningServer;

const post = async (url: string, body: unknown) => {
  const res = await fetch(url, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  return { status: res.status, json: (await res.json()) as any };
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
  const root = path.join(tmp.dir, 'models');
  const logger = createMemoryLogger();
  await trainClassic({ model: 'logistic', name: 'points', data: csv, target: 'label', ignore: ['y'], root, logger, onnx: false, validationSplit: 0.2, seed: 1 });
  await trainClassic({ model: 'linear', name: 'line', data: csv, target: 'y', ignore: ['label'], root, logger, onnx: false, validationSplit: 0.2, seed: 1 });
  const repo = createRepository({ maxBatch: 4, maxDelayMs: 1 });
  await repo.load(root);
  server = await startServer(repo, { port: 0, logger: false });
});

afterAll(async () => {
  await server?.shutdown();
  await tmp?.cleanup();
});

describe('tabular packages', () => {
  it('answers JSON rows as arrays or feature-keyed objects, with labels for the classifier', async () => {
    const r = await post(`${server.url}/predict?model=points`, { instances: [[0.1, 0.2], { x2: 4.1, x1: 3.9 }] });
    expect(r.status).toBe(200);
    expect(r.json.predictions).toHaveLength(2);
    expect(r.json.labels[0][0].label).toBe('low');
    expect(r.json.labels[1][0].label).toBe('high');
    const bad = await post(`${server.url}/predict?model=points`, { instances: [{ x1: 1, colour: 2 }] });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatch(/unknown feature\(s\) colour/);
  });

  it('serves regression values without labels and V2 FP32 rows', async () => {
    const r = await post(`${server.url}/predict?model=line`, { instances: [{ x1: 1, x2: 0.5 }] });
    expect(r.status).toBe(200);
    expect(r.json.labels).toBeUndefined();
    expect(r.json.predictions[0][0]).toBeCloseTo(1.5, 1);
    const meta = (await (await fetch(`${server.url}/v2/models/points`)).json()) as any;
    expect(meta.inputs[0].shape).toEqual([-1, 2]);
    const v2 = await post(`${server.url}/v2/models/points/infer`, { inputs: [{ name: meta.inputs[0].name, shape: [1, 2], datatype: 'FP32', data: [4, 4] }] });
    expect(v2.status).toBe(200);
    expect(v2.json.outputs[0].shape).toEqual([1, 2]);
    const img = await post(`${server.url}/v2/models/points/infer`, { inputs: [{ name: 'image', shape: [1], datatype: 'BYTES', data: ['aGVsbG8='] }] });
    expect(img.status).toBe(400);
    expect(img.json.error).toMatch(/tabular rows/);
  });
});
