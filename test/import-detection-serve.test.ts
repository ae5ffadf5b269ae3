// Imported detectors through the detection task: a YOLO-layout head and torchvision's SSDLite320 (boxes, scores and
// labels, no batch dimension), once imported, answer serve's /predict and `mlctl predict` with boxes in each picture's
// own pixels — the decoder run directly on onnxruntime's output for the same preprocessed picture, mapped back.
import * as grpc from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/engines/index.js';
import { loadPackage } from '../src/artifacts/package.js';
import { cocoDocument } from '../src/data/detection/index.js';
import { serveConfig } from '../src/serve/config.js';
import { predictV2Service } from '../src/serve/grpc/proto.js';
import { createServeMetrics } from '../src/serve/metrics.js';
import { startServe } from '../src/serve/serve.js';
import { createMemoryLogger } from '../src/util/log.js';
import { runCli } from './helpers/cli.js';
import { noisePictures } from './helpers/detection-fixtures.js';
import { mlctlHome, type MlctlHome } from './helpers/fixtures.js';
import { onnxRuntimeDetections } from './helpers/imported-detectors.js';
import { pythonFixture } from './helpers/python-fixtures.js';
import { tools } from './helpers/tools.js';

interface Box { label: string; score: number; box: { x: number; y: number; width: number; height: number } }

describe.skipIf(!tools.pythonTorch)('imported detectors served and predicted through the detection task', () => {
  let home: MlctlHome;
  let yolo: string;
  let ssd: string;
  let picture: Buffer;
  let picturePath: string;

  beforeAll(async () => {
    home = await mlctlHome('mlctl-import-det-serve-');
    yolo = path.join(pythonFixture('import_torch.py'), 'yolov8.onnx');
    ssd = path.join(pythonFixture('import_ssdlite.py', 400_000), 'ssdlite.onnx');
    // A wide picture with structure in it, so the mapping back (x and y scaled differently) is exercised.
    const w = 200;
    const h = 120;
    const raw = Buffer.alloc(w * h * 3);
    for (let i = 0; i < w * h; i++) [raw[i * 3], raw[i * 3 + 1], raw[i * 3 + 2]] = [(i * 7) % 256, ((i / w) * 2) % 256, (i % w) + 40];
    picture = await sharp(raw, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
    picturePath = path.join(home.dir, 'wide.png');
    await fs.writeFile(picturePath, picture);
  }, 600_000);

  afterAll(async () => {
    await home?.cleanup();
  });

  /** What the package's head decodes from onnxruntime's own answer for the picture, in the picture's pixels. */
  const expected = (name: string, onnx: string, limits: { minScore: number; maxDetections: number }, image: Buffer | string = picture) => onnxRuntimeDetections(name, onnx, limits, image);

  const expectSame = (got: Box[], want: Box[], px: number) => {
    expect(got.length).toBe(want.length);
    got.forEach((d, i) => {
      expect(d.label).toBe(want[i]!.label);
      expect(Math.abs(d.score - want[i]!.score)).toBeLessThan(1e-5);
      for (const k of ['x', 'y', 'width', 'height'] as const) expect(Math.abs(d.box[k] - want[i]!.box[k])).toBeLessThan(px);
    });
  };

  const startServing = async (name: string, audit?: string) =>
    startServe(
      serveConfig((await loadPackage(name)).dir, { port: 0, batching: { maxBatch: 4, maxDelayMs: 2 }, grpc: { port: 0, maxMessageBytes: 8 << 20 }, ...(audit ? { security: { audit: { file: audit, maxBytes: 1 << 20, keep: 1 } } } : {}) }),
      { logger: createMemoryLogger(), httpLogger: false, metrics: createServeMetrics({ defaultMetrics: false }), engineThread: false },
    );

  async function servedDetections(name: string, query: string): Promise<Box[][]> {
    const serving = await startServing(name);
    try {
      const r = await fetch(`${serving.server.url}/predict${query}`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: picture });
      const body = (await r.json()) as { detections: Box[][] };
      expect(r.status, JSON.stringify(body)).toBe(200);
      return body.detections;
    } finally {
      await serving.server.shutdown();
    }
  }

  async function predictedRows(name: string, args: string[], inputs = [picturePath]): Promise<Array<Record<string, number | string>>> {
    const out = path.join(home.dir, `${name}-${inputs.length}.jsonl`);
    const r = await runCli(['predict', (await loadPackage(name)).dir, ...inputs, '--format', 'jsonl', '--out', out, '--engine', 'onnx', ...args, '--json']);
    expect(r.code, JSON.stringify(r.json)).toBe(0);
    return (await fs.readFile(out, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
  }

  const asRows = (want: Box[]) => want.map((d) => ({ label: d.label, score: d.score, x: d.box.x, y: d.box.y, width: d.box.width, height: d.box.height }));
  const expectRows = (rows: Array<Record<string, number | string>>, want: Box[]) => {
    expect(rows).toHaveLength(want.length);
    asRows(want).forEach((w, i) => {
      expect(rows[i]!.label).toBe(w.label);
      for (const k of ['score', 'x', 'y', 'width', 'height'] as const) expect(Math.abs(Number(rows[i]![k]) - w[k])).toBeLessThan(k === 'score' ? 1e-5 : 0.006);
    });
  };

  it('a YOLOv8-layout head (NCHW, batch 1): /predict and predict give the decoded boxes in picture pixels', async () => {
    const r = await runCli(['import', yolo, '--name', 'yolo8', '--task', 'detection', '--layout', 'yolo', '--labels', 'cat,dog', '--preprocessing', 'unit', '--json']);
    expect(r.code).toBe(0);
    const want = await expected('yolo8', yolo, { minScore: 0.3, maxDetections: 300 });
    // The fixture's head keeps four boxes above 0.3 (test/import-detection.test.ts KEPT), scaled 200/64 by 120/64.
    expect(want.map((d) => d.label)).toEqual(['cat', 'dog', 'dog', 'cat']);
    expect(want[0]!.box.x).toBeCloseTo((22 * 200) / 64, 3);
    expect(want[0]!.box.height).toBeCloseTo((20 * 120) / 64, 3);
    const [served] = await servedDetections('yolo8', '');
    expectSame(served!, want, 1e-3);
    expectRows(await predictedRows('yolo8', []), want);
  });

  it("torchvision's SSDLite320 (boxes, scores, labels; no batch dimension): /predict and predict give the decoded boxes", async () => {
    const r = await runCli(['import', ssd, '--name', 'ssd', '--task', 'detection', '--layout', 'torchvision', '--labels', 'a,b,c', '--preprocessing', 'unit', '--json']);
    expect(r.code).toBe(0);
    const want = await expected('ssd', ssd, { minScore: 0, maxDetections: 8 });
    expect(want.length).toBeGreaterThan(0);
    const [served] = await servedDetections('ssd', '?min_score=0&max_detections=8');
    expectSame(served!, want, 1e-3);
    expectRows(await predictedRows('ssd', ['--min-score', '0', '--max-detections', '8']), want);
    // Two pictures in one chunk: one run each (no batch dimension), each mapped back through its own geometry.
    const [tall] = await noisePictures(path.join(home.dir, 'tall'), 1, 90, 150);
    const both = await predictedRows('ssd', ['--min-score', '0', '--max-detections', '8', '--batch-size', '2'], [picturePath, tall!]);
    expectRows(both.filter((row) => row.input === picturePath), want);
    expectRows(both.filter((row) => row.input === tall), await expected('ssd', ssd, { minScore: 0, maxDetections: 8 }, tall));
  });

  it('torchvision without a batch dimension: several pictures per /predict, one run each, as if sent one by one', async () => {
    const [tallFile] = await noisePictures(path.join(home.dir, 'tall-serve'), 1, 90, 150);
    const tall = await fs.readFile(tallFile!);
    const limits = { minScore: 0, maxDetections: 8 };
    const [wantWide, wantTall] = [await expected('ssd', ssd, limits), await expected('ssd', ssd, limits, tall)];
    // The two pictures find different boxes: an answer given to the wrong picture would show.
    expect(wantWide.map((d) => d.box)).not.toEqual(wantTall.map((d) => d.box));
    const audit = path.join(home.dir, 'ssd-audit.jsonl');
    const serving = await startServing('ssd', audit);
    const base = serving.server.url;
    try {
      // Multipart with two files, then JSON instances with three: one list per picture, in request order.
      const form = new FormData();
      form.append('image', new Blob([picture], { type: 'image/png' }), 'wide.png');
      form.append('image', new Blob([tall], { type: 'image/png' }), 'tall.png');
      form.append('min_score', '0');
      form.append('max_detections', '8');
      const multi = await fetch(`${base}/predict`, { method: 'POST', body: form });
      const multiBody = (await multi.json()) as { detections: Box[][] };
      expect(multi.status, JSON.stringify(multiBody)).toBe(200);
      expect(multiBody.detections).toHaveLength(2);
      expectSame(multiBody.detections[0]!, wantWide, 1e-3);
      expectSame(multiBody.detections[1]!, wantTall, 1e-3);
      const instances = [tall, picture, tall].map((b) => ({ b64: b.toString('base64') }));
      const json = await fetch(`${base}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ instances, min_score: 0, max_detections: 8 }) });
      const jsonBody = (await json.json()) as { detections: Box[][] };
      expect(json.status, JSON.stringify(jsonBody)).toBe(200);
      [wantTall, wantWide, wantTall].forEach((want, i) => expectSame(jsonBody.detections[i]!, want, 1e-3));

      // A broken picture among several: the request fails naming which one, as for a batched model.
      const broken = new FormData();
      broken.append('image', new Blob([picture], { type: 'image/png' }), 'wide.png');
      broken.append('image', new Blob([Buffer.from('not a picture')], { type: 'image/png' }), 'bad.png');
      const refused = await fetch(`${base}/predict`, { method: 'POST', body: broken });
      const refusedBody = (await refused.json()) as { error: string; code: string };
      expect(refused.status).toBe(400);
      expect(refusedBody).toMatchObject({ code: 'INPUT_INVALID', error: expect.stringMatching(/^image 2 of 2 is not a readable image/) });

      // Six single-picture requests at once: each its own run (the queue never stacks two for this model).
      const one = (b: Buffer) => fetch(`${base}/predict?min_score=0&max_detections=8`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: b });
      const answers = await Promise.all([picture, tall, picture, tall, picture, tall].map(one));
      const bodies = (await Promise.all(answers.map((r) => r.json()))) as Array<{ detections: Box[][] }>;
      answers.forEach((r, i) => expect(r.status, JSON.stringify(bodies[i])).toBe(200));
      bodies.forEach((b, i) => expectSame(b.detections[0]!, i % 2 ? wantTall : wantWide, 1e-3));
      const stats = (await (await fetch(`${base}/v2/models/ssd/stats`)).json()) as { model_stats: Array<{ batch_stats: Array<{ batch_size: number }> }> };
      expect(stats.model_stats[0]!.batch_stats.map((b) => b.batch_size)).toEqual([1]);

      // V2 is tensor-level and the model answers one picture's tensors: two in one request are refused, saying what to do.
      const v2 = await fetch(`${base}/v2/models/ssd/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: [{ name: 'image', datatype: 'BYTES', shape: [2], data: [picture.toString('base64'), tall.toString('base64')] }] }) });
      const v2Body = (await v2.json()) as { error: string };
      expect(v2.status).toBe(400);
      expect(v2Body.error).toMatch(/no batch dimension: it takes one example per request, not 2 .*separate requests; POST \/predict takes several pictures/);
      const v2One = await fetch(`${base}/v2/models/ssd/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], data: [picture.toString('base64')] }] }) });
      const v2OneBody = (await v2One.json()) as { outputs: Array<{ name: string; datatype: string; shape: number[] }> };
      expect(v2One.status, JSON.stringify(v2OneBody)).toBe(200);
      const k = v2OneBody.outputs[0]!.shape[1]!;
      expect(v2OneBody.outputs.map((o) => [o.name, o.datatype, o.shape])).toEqual([['boxes', 'FP32', [1, k, 4]], ['scores', 'FP32', [1, k]], ['labels', 'INT64', [1, k]]]);
      // gRPC alike: INVALID_ARGUMENT with the same advice.
      const Client = predictV2Service();
      const client = new Client(`127.0.0.1:${Number(String(serving.server.app.mlctl.info.grpc).split(':').pop())}`, grpc.credentials.createInsecure());
      try {
        const err = await new Promise<grpc.ServiceError>((resolve, reject) =>
          (client as unknown as { ModelInfer: (req: object, md: grpc.Metadata, opts: object, cb: (e: grpc.ServiceError | null) => void) => void }).ModelInfer(
            { model_name: 'ssd', inputs: [{ name: 'image', datatype: 'BYTES', shape: [2], contents: { bytes_contents: [picture, tall] } }] },
            new grpc.Metadata(),
            { deadline: Date.now() + 30_000 },
            (e) => (e ? resolve(e) : reject(new Error('two pictures in one gRPC request were answered'))),
          ),
        );
        expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
        expect(err.details).toMatch(/no batch dimension: it takes one example per request, not 2 .*separate requests/);
      } finally {
        client.close();
      }
    } finally {
      await serving.server.shutdown();
    }
    // The audit log: one line per picture of the multipart request, each with its place in it and its own hash.
    const lines = (await fs.readFile(audit, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const predictions = lines.filter((l) => l.event === 'predict');
    const first = predictions.filter((l) => l.requestId === predictions[0]!.requestId);
    expect(first.map((l) => l.index).sort()).toEqual([0, 1]);
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    expect(first.find((l) => l.index === 0)!.inputSha256).toBe(sha(picture));
    expect(first.find((l) => l.index === 1)!.inputSha256).toBe(sha(tall));
  });

  it("metadata and Triton configs list each detector's own named outputs: served as a batch of one, exported as the file is", async () => {
    type Any = Record<string, any>;
    const get = async (base: string, p: string) => (await (await fetch(`${base}${p}`)).json()) as Any;
    const dims = (sig: Any) => Object.fromEntries(Object.entries(sig.outputs as Record<string, Any>).map(([k, v]) => [k, [v.dtype, v.tensor_shape.dim.map((d: Any) => Number(d.size))]]));
    // Served: the shapes a request sends and an answer carries — [1, …], one picture per V2 request.
    const cases = [
      { name: 'ssd', input: ['image', [1, 3, 320, 320]], outputs: [['boxes', 'FP32', [1, -1, 4]], ['scores', 'FP32', [1, -1]], ['labels', 'INT64', [1, -1]]] },
      { name: 'yolo8', input: ['images', [1, 3, 64, 64]], outputs: [['output0', 'FP32', [1, 6, 10]]] },
    ] as const;
    for (const c of cases) {
      const serving = await startServing(c.name);
      const base = serving.server.url;
      try {
        const meta = await get(base, `/v2/models/${c.name}`);
        expect(meta.inputs).toEqual([{ name: c.input[0], datatype: 'FP32', shape: c.input[1] }, { name: 'image', datatype: 'BYTES', shape: [1] }]);
        expect(meta.outputs.map((o: Any) => [o.name, o.datatype, o.shape])).toEqual(c.outputs);
        const config = await get(base, `/v2/models/${c.name}/config`);
        expect(config.max_batch_size).toBe(0);
        expect(config.dynamic_batching).toBeUndefined();
        expect(config.input).toEqual([{ name: c.input[0], data_type: 'TYPE_FP32', dims: c.input[1] }]);
        expect(config.output.map((o: Any) => [o.name, o.data_type, o.dims])).toEqual(c.outputs.map(([n, t, d]) => [n, `TYPE_${t}`, d]));
        const sigs = (await get(base, `/v1/models/${c.name}/metadata`)).metadata.signature_def.signature_def;
        const tfType = (t: string) => (t === 'FP32' ? 'DT_FLOAT' : 'DT_INT64');
        for (const sig of ['serving_default', 'serving_image_bytes']) expect(dims(sigs[sig]), sig).toEqual(Object.fromEntries(c.outputs.map(([n, t, d]) => [n, [tfType(t), d]])));
        expect(sigs.serving_image_bytes.inputs.image_bytes.tensor_shape.dim.map((d: Any) => Number(d.size))).toEqual([1]);
      } finally {
        await serving.server.shutdown();
      }
    }
    // Exported: the model file's own tensors — torchvision's [3, 320, 320] image (CHW: Triton's NCHW format) and outputs
    // of the model's own length; the YOLO file's fixed batch of one kept in its dims. No batching for either.
    const exported = [
      { name: 'ssd', input: { name: 'image', data_type: 'TYPE_FP32', format: 'FORMAT_NCHW', dims: [3, 320, 320] }, outputs: [['boxes', 'TYPE_FP32', [-1, 4]], ['scores', 'TYPE_FP32', [-1]], ['labels', 'TYPE_INT64', [-1]]] },
      { name: 'yolo8', input: { name: 'images', data_type: 'TYPE_FP32', dims: [1, 3, 64, 64] }, outputs: [['output0', 'TYPE_FP32', [1, 6, 10]]] },
    ];
    for (const c of exported) {
      const repo = path.join(home.dir, 'triton');
      const r = await runCli(['export', (await loadPackage(c.name)).dir, '--format', 'triton', '--out', repo, '--json']);
      expect(r.code, JSON.stringify(r.json)).toBe(0);
      const config = r.json.details.config;
      expect(config.max_batch_size).toBe(0);
      expect(config.dynamic_batching).toBeUndefined();
      expect(config.input).toEqual([c.input]);
      expect(config.output.map((o: Any) => [o.name, o.data_type, o.dims])).toEqual(c.outputs);
      const pbtxt = await fs.readFile(path.join(repo, c.name, 'config.pbtxt'), 'utf8');
      expect(pbtxt).toContain('max_batch_size: 0');
      for (const [n] of c.outputs) expect(pbtxt).toContain(`name: "${n}"`);
      expect(pbtxt).toContain('key: "mlctl.detection"');
      // The plain ONNX export of the same file runs its check too (one [3, 320, 320] zero image for torchvision's).
      const onnx = await runCli(['export', (await loadPackage(c.name)).dir, '--format', 'onnx', '--out', path.join(home.dir, `onnx-${c.name}`), '--json']);
      expect(onnx.code, JSON.stringify(onnx.json)).toBe(0);
      expect(onnx.json.details.outputs.map((o: Any) => o.name)).toEqual(c.outputs.map(([n]) => n));
      expect(onnx.json.details.raw).toBeUndefined();
    }
  });

  it('evaluate scores both through the task: truth = the boxes they find above one score scores AP 1; moved truth does not', async () => {
    const files = await noisePictures(path.join(home.dir, 'eval'), 3, 160, 128);
    const size = { width: 160, height: 128 };
    for (const [name, onnx] of [['yolo8', yolo], ['ssd', ssd]] as const) {
      const m = (await loadPackage(name)).manifest;
      const found = await Promise.all(files.map((f) => expected(name, onnx, { minScore: 0, maxDetections: m.detection!.maxDetections }, f)));
      // One cut over every picture: every detection above it is a true box, so each class's hits outrank its misses.
      const scores = found.flat().map((d) => d.score).sort((a, b) => b - a);
      const cut = scores[Math.min(scores.length - 1, 5)]!;
      const truth = found.map((ds) => ds.filter((d) => d.score >= cut).map((d) => ({ label: d.classIndex, ...d.box })));
      expect(truth.flat().length).toBeGreaterThan(2);
      const write = async (dir: string, boxes: typeof truth) => {
        const samples = files.map((f, i) => ({ id: i + 1, path: f, ...size, boxes: boxes[i]!.map((b, j) => ({ label: b.label, box: { x: b.x, y: b.y, width: b.width, height: b.height }, source: `${i}:${j}` })) }));
        await fs.writeFile(path.join(dir, `${name}.json`), JSON.stringify(cocoDocument(samples, m.labels, m.detection!.categoryIds, dir)));
        return path.join(dir, `${name}.json`);
      };
      const exact = await runCli(['evaluate', (await loadPackage(name)).dir, '--data', await write(path.join(home.dir, 'eval'), truth), '--split', 'all', '--latency-runs', '0', '--engine', 'onnx', '--json']);
      expect(exact.code, JSON.stringify(exact.json)).toBe(0);
      expect(exact.json.results[0].metrics.coco.AP50, name).toBeCloseTo(1, 6);
      expect(exact.json.results[0].metrics.coco.AP, name).toBeCloseTo(1, 6);
      // Truth a third the size in the box's corner: IoU 0.09, no hit at .5 (what a wrong mapping back would look like).
      const moved = truth.map((bs) => bs.map((b) => ({ ...b, width: b.width / 3, height: b.height / 3 })));
      const off = await runCli(['evaluate', (await loadPackage(name)).dir, '--data', await write(path.join(home.dir, 'eval'), moved), '--split', 'all', '--latency-runs', '0', '--engine', 'onnx', '--json']);
      expect(off.code, JSON.stringify(off.json)).toBe(0);
      expect(off.json.results[0].metrics.coco.AP50, name).toBeLessThan(0.5);
      if (name !== 'ssd') continue;
      // Latency is timed through the detector's own path (three outputs, one run per picture): a figure, not a warning.
      const timed = await runCli(['evaluate', (await loadPackage(name)).dir, '--data', path.join(home.dir, 'eval', `${name}.json`), '--split', 'all', '--latency-runs', '3', '--batch-size', '2', '--engine', 'onnx', '--json']);
      expect(timed.code, JSON.stringify(timed.json)).toBe(0);
      const latency = timed.json.results[0].latency;
      expect(latency).toMatchObject({ runs: 3, batchSize: 1 });
      expect(latency.p50Ms).toBeGreaterThan(0);
      expect(latency.throughput.tried.map((t: { batchSize: number }) => t.batchSize)).toEqual([1, 2, 4, 16]);
      expect(timed.stderr).not.toMatch(/latency not measured/);
    }
  });
});
