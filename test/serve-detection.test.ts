// A detection package served over real HTTP: /predict answers boxes per image in each picture's own pixels (raw,
// multipart with several images, JSON b64), with min_score / max_detections from the query, the body or the
// multipart fields over serve's --min-score / --max-detections over the manifest; bad values are 400 INPUT_INVALID;
// V2 REST keeps the model's named raw output; the audit log records the best box; the page at / draws the boxes.
import * as grpc from '@grpc/grpc-js';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadedPackage } from '../src/artifacts/package.js';
import { serveConfig, type ServeConfigInput } from '../src/serve/config.js';
import { predictV2Service } from '../src/serve/grpc/proto.js';
import { createServeMetrics } from '../src/serve/metrics.js';
import { startServe, type Serving } from '../src/serve/serve.js';
import { createMemoryLogger } from '../src/util/log.js';
import { launchBrowser, watchedPage } from './helpers/browser.js';
import { DET, detectionMap, detectionPackage } from './helpers/detection-models.js';
import { tempDir } from './helpers/fixtures.js';
import { tools } from './helpers/tools.js';

type Any = Record<string, any>;

let tmp: { dir: string; cleanup: () => Promise<void> };
let pkg: LoadedPackage;
let serving: Serving;
let wide: Buffer; // 128x64 JPEG: letterboxed at scale 0.5 with 16 rows of padding above
let small: Buffer; // 32x32 PNG: scale 0.5, no padding

const start = (input: ServeConfigInput = {}) =>
  startServe(serveConfig(pkg.dir, { port: 0, batching: { maxBatch: 4, maxDelayMs: 2 }, ...input }), { logger: createMemoryLogger(), httpLogger: false, metrics: createServeMetrics({ defaultMetrics: false }), engineThread: false });

beforeAll(async () => {
  tmp = await tempDir('mlctl-serve-det-');
  pkg = await detectionPackage(tmp.dir, { name: 'det', resize: 'contain' });
  wide = await sharp({ create: { width: 128, height: 64, channels: 3, background: 'gray' } }).jpeg().toBuffer();
  small = await sharp({ create: { width: 32, height: 32, channels: 3, background: 'white' } }).png().toBuffer();
  serving = await start({ security: { audit: { file: path.join(tmp.dir, 'audit.jsonl'), maxBytes: 1 << 20, keep: 1 } }, grpc: { port: 0, maxMessageBytes: 8 << 20 } });
}, 60_000);
afterAll(async () => {
  await serving?.server.shutdown();
  await tmp?.cleanup();
});

const url = (p: string, s = serving) => `${s.server.url}${p}`;

async function post(p: string, body: string | Buffer | FormData, headers: Record<string, string> = {}, s = serving): Promise<{ status: number; json: Any }> {
  const res = await fetch(url(p, s), { method: 'POST', body, headers });
  return { status: res.status, json: (await res.json()) as Any };
}

const form = (fields: Record<string, string>, ...images: Array<{ data: Buffer; type: string; name: string }>) => {
  const f = new FormData();
  for (const i of images) f.append('image', new Blob([i.data], { type: i.type }), i.name);
  for (const [k, v] of Object.entries(fields)) f.append(k, v);
  return f;
};

const CAT_WIDE = { label: 'cat', score: expect.closeTo(0.9, 6), box: { x: 56, y: 0, width: 48, height: 32 } };
const DOG_WIDE = { label: 'dog', score: expect.closeTo(0.5, 6), box: { x: 0, y: 16, width: 32, height: 48 } };

describe('POST /predict on a detection model', () => {
  it('answers each image\'s boxes in its own pixels (letterbox undone), best first, above the default score', async () => {
    const r = await post('/predict', wide, { 'content-type': 'image/jpeg' });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ detections: [[CAT_WIDE, DOG_WIDE]], model: 'det', version: 1 });
  });

  it('several images in one multipart request, with min_score as a field: one list per image, in order', async () => {
    const r = await post('/predict', form({ min_score: '0.1' }, { data: wide, type: 'image/jpeg', name: 'w.jpg' }, { data: small, type: 'image/png', name: 's.png' }));
    expect(r.status).toBe(200);
    const [a, b] = r.json.detections as Any[][];
    // The 0.2 box lies in the wide picture's padding (nothing of the picture left): dropped; in the square one it stays.
    expect(a).toEqual([CAT_WIDE, DOG_WIDE]);
    expect(b!.map((d) => [d.label, d.box])).toEqual([
      ['cat', { x: 14, y: 8, width: 12, height: 8 }],
      ['dog', { x: 0, y: 12, width: 8, height: 16 }],
      ['cat', { x: 26, y: 26, width: 4, height: 4 }],
    ]);
  });

  it('query and JSON body parameters: max_detections, min_score', async () => {
    expect((await post('/predict?max_detections=1', wide, { 'content-type': 'image/jpeg' })).json.detections).toEqual([[CAT_WIDE]]);
    const body = JSON.stringify({ instances: [{ b64: small.toString('base64') }], min_score: 0.6 });
    const r = await post('/predict', body, { 'content-type': 'application/json' });
    expect(r.status).toBe(200);
    expect(r.json.detections[0].map((d: Any) => d.label)).toEqual(['cat']);
  });

  it.each([
    ['query min_score above 1', '/predict?min_score=2', 'raw'],
    ['query min_score not a number', '/predict?min_score=abc', 'raw'],
    ['query max_detections 0', '/predict?max_detections=0', 'raw'],
    ['multipart min_score not a number', '/predict', 'form'],
    ['JSON max_detections not an integer', '/predict', 'json'],
  ])('%s → 400 INPUT_INVALID', async (_, p, kind) => {
    const r =
      kind === 'raw' ? await post(p, wide, { 'content-type': 'image/jpeg' })
      : kind === 'form' ? await post(p, form({ min_score: 'lots' }, { data: wide, type: 'image/jpeg', name: 'w.jpg' }))
      : await post(p, JSON.stringify({ instances: [{ b64: small.toString('base64') }], max_detections: 2.5 }), { 'content-type': 'application/json' });
    expect(r.status).toBe(400);
    expect(r.json.code).toBe('INPUT_INVALID');
    expect(r.json.error).toMatch(/min_score|max_detections/);
  });

  it('V2 REST keeps the model\'s named raw output', async () => {
    const r = await post('/v2/models/det/infer', JSON.stringify({ inputs: [{ name: 'image', shape: [2], datatype: 'BYTES', data: [wide.toString('base64'), small.toString('base64')] }] }), { 'content-type': 'application/json' });
    expect(r.status).toBe(200);
    const [out] = r.json.outputs as Any[];
    expect(out).toMatchObject({ name: 'detections', datatype: 'FP32', shape: [2, DET.grid, DET.grid, DET.labels.length + 4] });
    const map = Array.from(detectionMap());
    expect(out.data.slice(0, map.length)).toEqual(map.map((v) => expect.closeTo(v, 6)));
    expect(out.data.slice(map.length)).toEqual(map.map((v) => expect.closeTo(v, 6)));
  });

  it('V2 gRPC keeps it too', async () => {
    const port = Number(String(serving.server.app.mlctl.info.grpc).split(':').pop());
    const Client = predictV2Service();
    const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    try {
      const res = await new Promise<Any>((resolve, reject) =>
        (client as any).ModelInfer({ model_name: 'det', inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], contents: { bytes_contents: [wide] } }] }, new grpc.Metadata(), { deadline: Date.now() + 30_000 }, (err: Error | null, r: Any) => (err ? reject(err) : resolve(r))),
      );
      expect(res.outputs.map((o: Any) => [o.name, o.datatype, o.shape.map(Number)])).toEqual([['detections', 'FP32', [1, DET.grid, DET.grid, DET.labels.length + 4]]]);
      const data = res.raw_output_contents.length ? Array.from(new Float32Array(Uint8Array.from(res.raw_output_contents[0]).buffer)) : res.outputs[0].contents.fp32_contents;
      expect(data).toEqual(Array.from(detectionMap()).map((v) => expect.closeTo(v, 6)));
    } finally {
      client.close();
    }
  });

  it('V2 metadata, Triton config and TF Serving metadata name the raw map output with its datatype and dims', async () => {
    const grid = [DET.grid, DET.grid, DET.labels.length + 4];
    const meta = (await (await fetch(url('/v2/models/det'))).json()) as Any;
    expect(meta.inputs).toEqual([{ name: 'input', datatype: 'FP32', shape: [-1, DET.size, DET.size, 3] }, { name: 'image', datatype: 'BYTES', shape: [-1] }]);
    expect(meta.outputs).toEqual([{ name: 'detections', datatype: 'FP32', shape: [-1, ...grid] }]);
    const config = (await (await fetch(url('/v2/models/det/config'))).json()) as Any;
    expect(config).toMatchObject({
      max_batch_size: 4,
      input: [{ name: 'input', data_type: 'TYPE_FP32', format: 'FORMAT_NHWC', dims: [DET.size, DET.size, 3] }],
      output: [{ name: 'detections', data_type: 'TYPE_FP32', dims: grid }],
    });
    // Detection labels are class indices in the map, not a scores vector Triton's classification could read.
    expect(config.output[0].label_filename).toBeUndefined();
    const tf = (await (await fetch(url('/v1/models/det/metadata'))).json()) as Any;
    const sig = tf.metadata.signature_def.signature_def.serving_default;
    expect(Object.keys(sig.outputs)).toEqual(['detections']);
    expect(sig.outputs.detections).toMatchObject({ dtype: 'DT_FLOAT', name: 'detections:0' });
    expect(sig.outputs.detections.tensor_shape.dim.map((d: Any) => Number(d.size))).toEqual([-1, ...grid]);
  });

  it('the audit log records how many boxes and the best one', async () => {
    await post('/predict', small, { 'content-type': 'image/png' });
    const lines = (await fs.readFile(path.join(tmp.dir, 'audit.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Any);
    const last = lines.filter((l) => l.event === 'predict' || l.label !== undefined).at(-1)!;
    expect(last).toMatchObject({ detections: 2, label: 'cat', score: 0.9 });
  });
});

describe('serve --min-score / --max-detections', () => {
  it('set the default a request can still override', async () => {
    const s = await start({ detection: { minScore: 0.6 } });
    try {
      expect((await post('/predict', wide, { 'content-type': 'image/jpeg' }, s)).json.detections).toEqual([[CAT_WIDE]]);
      expect((await post('/predict?min_score=0.4', wide, { 'content-type': 'image/jpeg' }, s)).json.detections).toEqual([[CAT_WIDE, DOG_WIDE]]);
    } finally {
      await s.server.shutdown();
    }
  });
});

describe.skipIf(!tools.chromium)('the page at / draws the boxes (chromium)', () => {
  it('an uploaded picture gets its boxes drawn where /predict puts them, and the min score field filters them', async () => {
    const session = await launchBrowser();
    try {
      const file = path.join(tmp.dir, 'wide.jpg');
      await fs.writeFile(file, wide);
      const { page, problems } = await watchedPage(session.browser);
      await page.goto(url('/'), { waitUntil: 'networkidle0' });
      await page.waitForSelector('#app:not([hidden])');
      expect(await page.$eval('#minscore', (e) => (e as unknown as { hidden: boolean }).hidden)).toBe(false);
      expect(await page.$eval('#topk', (e) => (e as unknown as { hidden: boolean }).hidden)).toBe(true);
      await (await page.$('#file'))!.uploadFile(file);
      await page.waitForFunction('document.querySelectorAll("#boxes .box").length === 2');
      // Each box's rectangle over the shown picture, in the picture's pixels.
      const rects = await page.$$eval('#boxes .box', (boxes) => {
        const preview = (globalThis as unknown as { document: { querySelector(s: string): { getBoundingClientRect(): { left: number; top: number; width: number; height: number }; naturalWidth: number } } }).document.querySelector('#preview');
        const img = preview.getBoundingClientRect();
        const natural = preview.naturalWidth;
        const k = natural / img.width;
        return boxes.map((b) => {
          const r = b.getBoundingClientRect();
          return [b.textContent, (r.left - img.left) * k, (r.top - img.top) * k, r.width * k, r.height * k];
        });
      });
      const expected = [['cat 0.90', 56, 0, 48, 32], ['dog 0.50', 0, 16, 32, 48]];
      rects.forEach((r, i) => {
        expect(r[0]).toBe(expected[i]![0]);
        for (let j = 1; j < 5; j++) expect(Math.abs((r[j] as number) - (expected[i]![j] as number))).toBeLessThan(1.5);
      });
      expect(await page.$$eval('#result .bar .label', (l) => l.map((e) => e.textContent))).toEqual(['cat', 'dog']);
      await page.$eval('#minscore', (e) => ((e as unknown as { value: string }).value = '0.6'));
      await (await page.$('#file'))!.uploadFile(file);
      await page.waitForFunction('document.querySelectorAll("#boxes .box").length === 1');
      expect(problems.pageErrors).toEqual([]);
      expect(problems.console).toEqual([]);
    } finally {
      await session.close();
    }
  }, 60_000);
});
