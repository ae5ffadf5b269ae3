// The library's calls in process (src/index.ts, as the package exports them): predict and evaluate answer plain typed
// results, an aborted signal rejects with its reason and writes nothing, and a device this machine cannot run fails
// before any work with DEVICE_UNAVAILABLE.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deviceProblem } from '../src/runtime/ort.js';
import { setSessionDefaults } from '../src/runtime/device.js';
import { evaluate, loadPackage, predict, type LoadedPackage } from '../src/index.js';
import { mlctlHome, synthDataset, tinyPackage, type MlctlHome } from './helpers/fixtures.js';
import { createMemoryLogger } from '../src/util/log.js';

let tmp: MlctlHome;
let data: string;
let pkg: LoadedPackage;

beforeAll(async () => {
  tmp = await mlctlHome('mlctl-library-calls-');
  data = path.join(tmp.dir, 'data');
  await synthDataset(data, { classes: 3, perClass: 3, size: 32 });
  await tinyPackage(tmp.artifacts, { name: 'tiny', labels: ['checker', 'circle', 'square', 'triangle', 'stripes'] });
  pkg = await loadPackage(path.join(tmp.artifacts, 'tiny', '1'));
});
afterAll(async () => {
  setSessionDefaults({});
  await tmp?.cleanup();
});

describe('library calls', () => {
  it('predict answers a PredictResult; evaluate an EvaluationResult', async () => {
    const out = path.join(tmp.dir, 'rows.csv');
    const r = await predict(pkg, { inputs: [data], out, topK: 1, engine: 'onnx', backend: 'cpu', logger: createMemoryLogger() });
    expect(r.rows).toBe(9);
    expect(r.errors).toBe(0);
    expect(r.engine.description).toMatch(/onnxruntime-node .*\(cpu, /);
    const e = await evaluate(pkg, { data, split: 'all', engine: 'onnx', latency: false, logger: createMemoryLogger() });
    expect(e.metrics.accuracy).toBeGreaterThanOrEqual(0);
    expect(e.metrics.accuracy).toBeLessThanOrEqual(1);
  });

  it('an aborted signal rejects with its reason and writes nothing', async () => {
    const ac = new AbortController();
    ac.abort(new Error('stopped by the caller'));
    const out = path.join(tmp.dir, 'never.csv');
    await expect(predict(pkg, { inputs: [data], out, signal: ac.signal })).rejects.toThrow('stopped by the caller');
    expect(existsSync(out)).toBe(false);
  });

  it.skipIf(deviceProblem({ kind: 'cuda' }) === undefined)('session.device cuda fails before any work (no CUDA provider here)', async () => {
    const out = path.join(tmp.dir, 'cuda.csv');
    await expect(predict(pkg, { inputs: [data], out, session: { device: { kind: 'cuda' } } })).rejects.toMatchObject({ code: 'DEVICE_UNAVAILABLE' });
    expect(existsSync(out)).toBe(false);
  });
});
