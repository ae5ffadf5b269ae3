// The task layer (src/tasks): the one ranking and softmax (ties, NaN, large logits), dispatch by manifest task
// (unknown and absent tasks), each task's post-processing of engine tensors and its renderings for serve, predict,
// audit and watch, the metrics accumulator — and a model without a task end to end: served over V2 and TF Serving
// :predict with its own tensors, refused with TASK_REQUIRED by /predict, predict and evaluate.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest, ManifestDraft } from '../src/artifacts/manifest.js';
import { savePackage, writeTfjsModel, type LoadedPackage } from '../src/artifacts/package.js';
import { imageInputSpec } from '../src/data/preprocess.js';
import '../src/engines/index.js';
import { ERRORS, MlctlError } from '../src/errors.js';
import type { Tensor } from '../src/runtime/tensor.js';
import { auditPredictions, openAuditLog } from '../src/serve/audit.js';
import { createRepository } from '../src/serve/repository.js';
import { buildServer } from '../src/serve/server.js';
import { classificationResults, imageClassification, tabularClassification } from '../src/tasks/classification/index.js';
import { classificationMetrics } from '../src/tasks/classification/metrics.js';
import { requireTask, TASK_IDS, taskNamed, taskOf } from '../src/tasks/index.js';
import { tabularRegression } from '../src/tasks/regression/index.js';
import { argmax, ROUND, softmax, softmaxRows, topIndices, topK } from '../src/tasks/scores.js';
import { runCli } from './helpers/cli.js';
import { synthDataset, tempDir, tinyModel } from './helpers/fixtures.js';

const fp32 = (data: number[], shape: number[], name = 'predictions'): Tensor => ({ name, datatype: 'FP32', shape, data: Float32Array.from(data) });

/** What the one ranking must equal: a stable sort by descending score, NaN last. */
function referenceOrder(row: number[]): number[] {
  const key = (v: number) => (Number.isNaN(v) ? -Infinity : v);
  return row.map((_, i) => i).sort((a, b) => {
    const na = Number.isNaN(row[a]!);
    const nb = Number.isNaN(row[b]!);
    if (na !== nb) return na ? 1 : -1;
    return key(row[b]!) - key(row[a]!) || a - b;
  });
}

describe('the one ranking (tasks/scores.ts)', () => {
  it('ranks best first, equal scores by lower index, NaN last, k capped at the row', () => {
    expect(topIndices([0.2, 0.5, 0.5, 0.1], 3)).toEqual([1, 2, 0]);
    expect(topIndices([NaN, 0.1, -Infinity, NaN], 4)).toEqual([1, 2, 0, 3]);
    expect(topIndices([3, 1, 2], 10)).toEqual([0, 2, 1]);
    expect(topIndices([3, 1, 2], 0)).toEqual([]);
    // A row inside a batch: row 1 of [2, 3].
    expect(topIndices([9, 9, 9, 0.1, 0.7, 0.7], 2, 3, 3)).toEqual([1, 2]);
    // Top-1 is argmax, ties included.
    expect(topIndices([0.4, 0.6, 0.6], 1)[0]).toBe(argmax([0.4, 0.6, 0.6]));
  });

  it('gives the same order on its short-list path (small k, wide row) as on its sort path', () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let t = 0; t < 200; t++) {
      const width = 1 + Math.floor(rand() * 300);
      // Few distinct values, so ties are common; some NaN.
      const row = Array.from({ length: width }, () => (rand() < 0.05 ? NaN : Math.floor(rand() * 12) / 4));
      const want = referenceOrder(row);
      for (const k of [1, 3, 5, Math.ceil(width / 8) + 1, width]) expect(topIndices(row, k)).toEqual(want.slice(0, Math.min(k, width)));
    }
  });

  it('labels a row, names unlabelled classes by index, and rounds only when rendering', () => {
    const scores = Float32Array.from([0.1, 0.123456789, 0.7, 0.076543211]);
    expect(topK(scores, 0, ['a', 'b'], 3, { width: 4 })).toEqual([
      { label: '2', score: scores[2] },
      { label: 'b', score: scores[1] },
      { label: 'a', score: scores[0] },
    ]);
    expect(topK(scores, 0, ['a', 'b', 'c', 'd'], 2, { round: ROUND.decimals(4) })).toEqual([{ label: 'c', score: 0.7 }, { label: 'b', score: 0.1235 }]);
    expect(topK(scores, 0, ['a', 'b', 'c', 'd'], 2, { round: ROUND.significant(6) })[1]!.score).toBe(0.123457);
    // Rounding never reorders: 0.12344 and 0.12341 render alike but keep their true order.
    expect(topK([0.12341, 0.12344], 0, ['x', 'y'], 2, { round: ROUND.decimals(4) }).map((t) => t.label)).toEqual(['y', 'x']);
  });

  it('softmax stays finite and exact for large logits (the row max is subtracted first)', () => {
    const big = softmax(Float64Array.from([1000, 1001, 1002]));
    const small = softmax(Float64Array.from([0, 1, 2]));
    big.forEach((p, i) => expect(p).toBeCloseTo(small[i]!, 15));
    expect(Array.from(softmax(Float64Array.from([1e4, -1e4])))).toEqual([1, 0]);
    expect(Array.from(softmax(Float64Array.from([-Infinity, 0])))).toEqual([0, 1]);
    const rows = softmaxRows(Float32Array.from([88, 89, 90, -90, 0, 90]), 3);
    expect(rows).toBeInstanceOf(Float32Array);
    for (const o of [0, 3]) expect(rows[o]! + rows[o + 1]! + rows[o + 2]!).toBeCloseTo(1, 6);
    expect(rows.every(Number.isFinite)).toBe(true);
  });
});

const manifest = (over: Partial<Manifest>): Manifest => ({
  schemaVersion: 1,
  name: 'm',
  version: 1,
  createdAt: '2025-01-01T00:00:00Z',
  task: 'image-classification',
  labels: ['cat', 'dog', 'owl'],
  input: imageInputSpec(8, 'caffe'),
  output: { name: 'predictions', kind: 'scores', size: 3 },
  architecture: {},
  formats: {},
  lineage: [],
  files: {},
  ...over,
});
const tabular = { kind: 'tabular' as const, name: 'input', features: ['x1', 'x2'], dtype: 'float32' as const };

function thrown(f: () => unknown): MlctlError {
  try {
    f();
  } catch (err) {
    return err as MlctlError;
  }
  throw new Error('expected a throw');
}

describe('dispatch by manifest task', () => {
  it('finds every task by its manifest name', () => {
    expect(TASK_IDS).toEqual(['image-classification', 'tabular-classification', 'tabular-regression', 'detection']);
    expect(taskOf(manifest({}))).toBe(imageClassification);
    expect(taskOf(manifest({ task: 'tabular-classification', input: tabular }))).toBe(tabularClassification);
    expect(requireTask(manifest({ task: 'tabular-regression', input: tabular, labels: ['y'], output: { name: 'value', kind: 'regression', size: 1 } }), 'predict')).toBe(tabularRegression);
    expect(taskNamed('object-detection')).toBeUndefined();
  });

  it('represents a model without a task, and refuses it with TASK_REQUIRED where a task is needed', () => {
    const generic = manifest({ task: undefined, labels: [] });
    expect(taskOf(generic)).toBeUndefined();
    const err = thrown(() => requireTask(generic, 'POST /predict'));
    expect(err.code).toBe('TASK_REQUIRED');
    expect(err.message).toMatch(/POST \/predict needs a model with a task .*m v1 has none: it is a generic tensor model/);
    expect([ERRORS.TASK_REQUIRED.exit, ERRORS.TASK_REQUIRED.http]).toEqual([1, 400]);
  });

  it('names an unknown task and the ones this mlctl knows (TASK_UNKNOWN)', () => {
    const err = thrown(() => taskOf(manifest({ task: 'object-detection' })));
    expect(err.code).toBe('TASK_UNKNOWN');
    expect(err.message).toMatch(/task "object-detection", which this mlctl does not know \(it knows image-classification, tabular-classification, tabular-regression, detection\)/);
  });

  it('checks the manifest sections a task owns', () => {
    expect(thrown(() => requireTask(manifest({ input: tabular }), 'serve')).message).toMatch(/its task is image-classification but its input is tabular/);
    expect(thrown(() => requireTask(manifest({ output: { name: 'value', kind: 'regression', size: 1 } }), 'serve')).code).toBe('PACKAGE_INVALID');
    expect(thrown(() => requireTask(manifest({ task: 'tabular-regression', input: tabular, output: { name: 'p', kind: 'probabilities', size: 2 } }), 'serve')).message).toMatch(/not one regression value/);
  });
});

describe('classification: post-processing and renderings', () => {
  const m = manifest({});
  // Two examples of logits; the second has a tie between dog and owl.
  const out = fp32([2, 0, 1, -1, 3, 3], [2, 3]);
  const results = imageClassification.results([out], m);

  it('keeps the model scores and softmaxes logits into probabilities, one result per example', () => {
    expect(results).toHaveLength(2);
    expect(Array.from(results[0]!.scores)).toEqual([2, 0, 1]);
    const e = [Math.exp(2), 1, Math.exp(1)];
    results[0]!.probabilities.forEach((p, i) => expect(p).toBeCloseTo(e[i]! / (e[0]! + e[1]! + e[2]!), 6));
    // Probability outputs pass through untouched.
    const probs = classificationResults([fp32([0.2, 0.3, 0.5], [1, 3])], manifest({ output: { name: 'predictions', kind: 'probabilities', size: 3 } }));
    expect(probs[0]!.probabilities).toBe(probs[0]!.scores);
  });

  it('reads non-FP32 outputs through toNumbers (FP16 here)', () => {
    // 1.0, 2.0, 0.5 as IEEE half floats.
    const half: Tensor = { name: 'predictions', datatype: 'FP16', shape: [1, 3], data: Uint16Array.from([0x3c00, 0x4000, 0x3800]) };
    const [r] = classificationResults([half], manifest({ output: { name: 'predictions', kind: 'probabilities', size: 3 } }));
    expect(Array.from(r!.scores)).toEqual([1, 2, 0.5]);
  });

  it('renders /predict and :classify from the raw scores, ties by label order', () => {
    expect(imageClassification.serve.predict(results, m, { topK: 2 })).toEqual({
      predictions: [[2, 0, 1], [-1, 3, 3]],
      labels: [[{ label: 'cat', score: 2 }, { label: 'owl', score: 1 }], [{ label: 'dog', score: 3 }, { label: 'owl', score: 3 }]],
    });
    expect(imageClassification.serve.tfServing!.answer(results[1], m, { topK: 1 })).toEqual([['dog', 3]]);
    expect(imageClassification.serve.tfServing!.method).toBe('classify');
    // A classifier without labels answers its scores only.
    expect(imageClassification.serve.predict(results, manifest({ labels: [] }), { topK: 2 })).toEqual({ predictions: [[2, 0, 1], [-1, 3, 3]] });
  });

  it('writes predict rows from probabilities (6 significant digits), k capped at the label count', () => {
    const rows = imageClassification.rows(m, { topK: 10 });
    expect(rows.columns).toEqual(['label_1', 'score_1', 'label_2', 'score_2', 'label_3', 'score_3']);
    expect(rows.topK).toBe(3);
    expect(rows.cells(results[0])).toEqual(['cat', 0.665241, 'owl', 0.244728, 'dog', 0.0900306]);
    expect(rows.fields(results[1])).toEqual({ predictions: [{ label: 'dog', score: 0.495463 }, { label: 'owl', score: 0.495463 }, { label: 'cat', score: 0.00907471 }] });
  });

  it('gives the audit line its top label (6 decimals) and watch the probabilities', () => {
    expect(imageClassification.audit(results[0], m)).toEqual({ label: 'cat', score: 2 });
    expect(imageClassification.audit(classificationResults([fp32([0.1234567, 0.8765433], [1, 2])], manifest({ labels: ['a', 'b'] }))[0], manifest({ labels: ['a', 'b'] }))).toEqual({ label: 'b', score: 0.876543 });
    expect(imageClassification.watch!.scores(results[1])).toBe(results[1]!.probabilities);
  });

  it('accumulates the same metrics as the metric functions on softmaxed scores', () => {
    const acc = imageClassification.metrics(m, { topK: 2 });
    acc.add(results, [0, 2], ['a.jpg', 'b.jpg']);
    const probs = Float32Array.from([...results[0]!.probabilities, ...results[1]!.probabilities]);
    expect(acc.count).toBe(2);
    expect(acc.finish()).toEqual(classificationMetrics(probs, [0, 2], 3, { topK: 2, labelNames: m.labels, refs: ['a.jpg', 'b.jpg'] }));
  });
});

describe('tabular-regression: post-processing and renderings', () => {
  const m = manifest({ task: 'tabular-regression', input: tabular, labels: ['price'], output: { name: 'value', kind: 'regression', size: 1 } });
  const results = tabularRegression.results([fp32([1.23456789, -2], [2, 1], 'value')], m);

  it('renders values for /predict, :regress, predict rows (7 significant digits) and the audit line', () => {
    expect(results.map((r) => r.value)).toEqual([Math.fround(1.23456789), -2]);
    expect(tabularRegression.serve.predict(results, m, { topK: 5 })).toEqual({ predictions: [[Math.fround(1.23456789)], [-2]] });
    expect(tabularRegression.serve.tfServing).toMatchObject({ method: 'regress' });
    const rows = tabularRegression.rows(m, { topK: 5 });
    expect([rows.columns, rows.topK, rows.cells(results[0]!), rows.fields(results[1]!)]).toEqual([['value'], 0, [1.234568], { value: -2 }]);
    expect(tabularRegression.audit(results[0]!, m)).toEqual({ label: 'price', score: 1.234568 });
    expect(tabularRegression.watch).toBeUndefined();
  });

  it('accumulates R², MAE and RMSE', () => {
    const acc = tabularRegression.metrics(m);
    acc.add(results, [1, -1]);
    const r = acc.finish();
    expect(r.n).toBe(2);
    expect(r.mae).toBeCloseTo((Math.abs(1 - Math.fround(1.23456789)) + 1) / 2, 6);
  });
});

describe('a model without a task (a generic tensor model)', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let generic: LoadedPackage;
  let unknown: LoadedPackage;
  let app: FastifyInstance;
  let data: string;
  let auditFile: string;

  const save = (name: string, task: string | undefined) => {
    const model = tinyModel(16, 3, 4);
    const draft: ManifestDraft = { labels: [], input: imageInputSpec(16, 'caffe'), output: { name: 'predictions', kind: 'scores', size: 3 }, architecture: { type: 'test' }, formats: { tfjs: 'model.json' }, lineage: [], ...(task ? { task } : {}) };
    return savePackage({ root: path.join(tmp.dir, 'models'), name, draft, write: (dir) => writeTfjsModel(dir, model) }).finally(() => model.dispose());
  };

  beforeAll(async () => {
    tmp = await tempDir('mlctl-tasks-');
    process.env.MLCTL_CACHE = path.join(tmp.dir, 'cache');
    generic = await save('bare', undefined);
    unknown = await save('future', 'object-detection');
    data = path.join(tmp.dir, 'data');
    await synthDataset(data, { classes: 2, perClass: 2, size: 16 });
    const repo = createRepository({ maxBatch: 2, maxDelayMs: 1 });
    await repo.load(generic.dir);
    await repo.load(unknown.dir);
    auditFile = path.join(tmp.dir, 'audit.log');
    const audit = openAuditLog({ file: auditFile, syncIntervalMs: 0 });
    auditPredictions(repo, audit);
    app = buildServer(repo, { logger: false });
    app.addHook('onClose', async () => audit.close());
    await app.ready();
  });

  afterAll(async () => {
    await app?.close();
    delete process.env.MLCTL_CACHE;
    await tmp?.cleanup();
  });

  const post = async (url: string, body: unknown) => {
    const res = await app.inject({ method: 'POST', url, payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
    return { status: res.statusCode, json: res.json() as { error?: string; code?: string; outputs?: Array<{ shape: number[]; data: number[] }>; predictions?: number[][] } };
  };

  it('serves its tensors over V2 and TF Serving :predict, and refuses what needs a task', async () => {
    const x = new Array(16 * 16 * 3).fill(0.5);
    const v2 = await post('/v2/models/bare/infer', { inputs: [{ name: 'input', shape: [1, 16, 16, 3], datatype: 'FP32', data: x }] });
    expect(v2.status).toBe(200);
    expect(v2.json.outputs![0]!.shape).toEqual([1, 3]);
    const tfp = await post('/v1/models/bare:predict', { instances: [new Array(16).fill(new Array(16).fill([0.5, 0.5, 0.5]))] });
    expect(tfp.status).toBe(200);
    expect(tfp.json.predictions![0]).toEqual(v2.json.outputs![0]!.data);
    const p = await post('/predict?model=bare', { instances: [{ b64: 'aGVsbG8=' }] });
    expect([p.status, p.json.code]).toEqual([400, 'TASK_REQUIRED']);
    expect(p.json.error).toMatch(/POST \/predict needs a model with a task/);
    const c = await post('/v1/models/bare:classify', { instances: [x] });
    expect(c.status).toBe(400);
    expect(c.json.error).toMatch(/answers neither :classify nor :regress \(it has no task\): use :predict/);
    const meta = (await app.inject({ method: 'GET', url: '/v1/models/bare/metadata' })).json() as { metadata: { signature_def: { signature_def: Record<string, unknown> } } };
    expect(Object.keys(meta.metadata.signature_def.signature_def).sort()).toEqual(['serving_default', 'serving_image_bytes']);
    const f = await post('/predict?model=future', { instances: [{ b64: 'aGVsbG8=' }] });
    expect([f.status, f.json.code]).toEqual([400, 'TASK_UNKNOWN']);
    // The audit line of a task-less prediction records the call and its input, no label.
    const lines = (await readFile(auditFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const pred = lines.filter((l) => l.event === 'predict' && l.model === 'bare');
    expect(pred).toHaveLength(2);
    expect(pred[0]).toMatchObject({ index: 0, inputSha256: expect.any(String) });
    expect(pred[0]).not.toHaveProperty('label');
  });

  it('is refused by predict and evaluate with TASK_REQUIRED (exit 1), an unknown task with TASK_UNKNOWN', async () => {
    const out = path.join(tmp.dir, 'rows.csv');
    const p = await runCli(['predict', generic.dir, data, '--out', out, '--engine', 'tfjs', '--backend', 'cpu', '--json']);
    expect([p.code, p.json.error.code]).toEqual([1, 'TASK_REQUIRED']);
    expect(p.json.error.message).toMatch(/^predict needs a model with a task/);
    const e = await runCli(['evaluate', generic.dir, '--data', data, '--latency-runs', '0', '--json']);
    expect([e.code, e.json.error.code]).toEqual([1, 'TASK_REQUIRED']);
    const u = await runCli(['predict', unknown.dir, data, '--out', out, '--engine', 'tfjs', '--backend', 'cpu', '--json']);
    expect([u.code, u.json.error.code]).toEqual([1, 'TASK_UNKNOWN']);
    // Refused before anything was written.
    await expect(readFile(out)).rejects.toThrow(/ENOENT/);
  });
});
