// Batch prediction (src/predict) on a real tiny package and real images through sharp: folders, lists, stdin and
// URLs from a real HTTP server; top-k rows checked against the engine run independently; unreadable images as
// error rows; durable appends, --resume after an interruption and a cut last line; shards + merge = one run.
import { createServer, type Server } from 'node:http';
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImageInputSpec } from '../src/artifacts/manifest.js';
import type { LoadedPackage } from '../src/artifacts/package.js';
import { imageToInput } from '../src/data/preprocess.js';
import '../src/engines/index.js';
import { predict, mergeShards, type PredictOptions } from '../src/predict/index.js';
import { FingerprintSet } from '../src/predict/fingerprints.js';
import { listInputs } from '../src/predict/inputs.js';
import { readRows, readSummary, summaryPath } from '../src/predict/output.js';
import { topK } from '../src/tasks/scores.js';
import { openEngine } from '../src/runtime/engine.js';
import { createMemoryLogger } from '../src/util/log.js';
import { parseShard, shardOf } from '../src/util/shard.js';
import { synthDataset, tempDir, tinyPackage } from './helpers/fixtures.js';
import { runFloat } from '../src/runtime/float.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let pkg: LoadedPackage;
let data: string;
let images: string[];
let server: Server;
let base: string;

beforeAll(async () => {
  tmp = await tempDir('mlctl-predict-');
  process.env.MLCTL_CACHE = path.join(tmp.dir, 'cache');
  data = path.join(tmp.dir, 'data');
  await synthDataset(data, { classes: 3, perClass: 6, size: 32 });
  pkg = await tinyPackage(path.join(tmp.dir, 'artifacts'), { name: 'tiny', labels: ['checker', 'circle', 'square'] });
  images = [];
  for await (const item of listInputs([data])) images.push(item.source);
  // A file that claims to be a JPEG but is not, in the folder: it must become an error row.
  await writeFile(path.join(data, 'circle', 'broken.jpg'), 'not an image');
  server = createServer(async (req, res) => {
    if (req.url === '/ok.png') {
      res.writeHead(200, { 'content-type': 'image/png' });
      res.end(await readFile(images[0]!));
    } else {
      res.writeHead(404);
      res.end('no');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server?.close();
  delete process.env.MLCTL_CACHE;
  await tmp?.cleanup();
});

function options(over: Partial<PredictOptions>): PredictOptions {
  return { inputs: [data], format: 'csv', topK: 2, batchSize: 4, engine: 'tfjs', logger: createMemoryLogger(), ...over };
}

async function csvRows(file: string) {
  const rows = [];
  for await (const r of readRows(file, 'csv')) rows.push(r);
  return rows;
}

/** Independent scores: the engine on each image, preprocessed one at a time. */
async function expectedScores(files: string[]): Promise<Float32Array[]> {
  const spec = pkg.manifest.input as ImageInputSpec;
  const engine = await openEngine(pkg, { engine: 'tfjs' });
  try {
    const out: Float32Array[] = [];
    for (const f of files) out.push(await runFloat(engine, await imageToInput(f, spec), 1));
    return out;
  } finally {
    await engine.dispose();
  }
}

describe('predict on images', () => {
  it('writes one CSV row per input in listing order, top-k matching the engine, unreadable files as error rows', async () => {
    const out = path.join(tmp.dir, 'all.csv');
    const res = await predict(pkg, options({ out }));
    expect(res.rows).toBe(images.length + 1);
    expect(res.errors).toBe(1);
    expect(res.interrupted).toBe(false);
    const text = await readFile(out, 'utf8');
    expect(text.split('\n')[0]).toBe('index,input,label_1,score_1,label_2,score_2,error');
    const rows = await csvRows(out);
    expect(rows.map((r) => r.index)).toEqual(rows.map((_, i) => i));
    const broken = rows.find((r) => r.input.endsWith('broken.jpg'))!;
    expect(broken.error).toBe(true);
    expect(broken.raw).toMatch(/,,,,cannot decode image/);
    const good = rows.filter((r) => !r.error);
    const want = await expectedScores(good.map((r) => path.resolve(r.input)));
    good.forEach((r, i) => {
      const [, , l1, s1, l2, s2] = r.raw.trim().split(',');
      const best = topK(want[i]!, 0, pkg.manifest.labels, 2);
      expect([l1, l2]).toEqual(best.map((b) => b.label));
      expect(Number(s1)).toBeCloseTo(best[0]!.score, 5);
      expect(Number(s2)).toBeLessThanOrEqual(Number(s1));
      expect(Number(s2)).toBeCloseTo(best[1]!.score, 5);
    });
    const summary = await readSummary(out);
    expect(summary).toMatchObject({ rows: images.length + 1, errors: 1, shard: { index: 0, count: 1 }, model: { name: 'tiny' } });
  });

  it('reads lists (text and CSV, paths relative to the list), stdin and http(s) URLs; JSON Lines output', async () => {
    const lists = path.join(tmp.dir, 'lists');
    await mkdir(lists, { recursive: true });
    const rel = path.relative(lists, images[1]!);
    await writeFile(path.join(lists, 'a.txt'), `# comment\n${rel}\n\n${base}/ok.png\n${base}/missing.png\ns3://bucket/x.jpg\n`);
    await writeFile(path.join(lists, 'b.csv'), `id,path\n7,${images[2]}\n`);
    const out = path.join(tmp.dir, 'mixed.jsonl');
    const stdin = Readable.from([`${images[3]}\n`]);
    const res = await predict(pkg, options({ inputs: [path.join(lists, 'a.txt'), path.join(lists, 'b.csv'), '-'], out, format: 'jsonl', stdin }));
    const docs = (await readFile(out, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(docs.map((d) => d.input)).toEqual([rel, `${base}/ok.png`, `${base}/missing.png`, 's3://bucket/x.jpg', images[2], images[3]]);
    expect(docs[0].predictions).toHaveLength(2);
    expect(docs[1].predictions[0].label).toBeTypeOf('string');
    expect(docs[2].error).toMatch(/HTTP 404/);
    expect(docs[3].error).toMatch(/unsupported URL scheme s3/);
    expect(res).toMatchObject({ rows: 6, errors: 2 });
    // The download and the local file are the same image: same prediction.
    const local = (await expectedScores([images[0]!]))[0]!;
    expect(docs[1].predictions[0].label).toBe(topK(local, 0, pkg.manifest.labels, 1)[0]!.label);
  });

  it('refuses to overwrite an output unless --resume or --force', async () => {
    const out = path.join(tmp.dir, 'exists.csv');
    await writeFile(out, 'keep me\n');
    await expect(predict(pkg, options({ out }))).rejects.toThrow(/it exists: pass --resume/);
    expect(await readFile(out, 'utf8')).toBe('keep me\n');
    await expect(predict(pkg, options({ inputs: [path.join(tmp.dir, 'nope')] }))).rejects.toThrow(/no such file or folder/);
    await expect(predict(pkg, options({ out: tmp.dir }))).rejects.toThrow(/it is a folder/);
  });
});

describe('predict --resume', () => {
  it('continues an interrupted run (and a cut last line) to the same rows as one uninterrupted run', async () => {
    const whole = path.join(tmp.dir, 'whole.csv');
    await predict(pkg, options({ out: whole }));
    const out = path.join(tmp.dir, 'resumed.csv');
    let chunks = 0;
    const first = await predict(pkg, options({ out, shouldStop: () => ++chunks >= 2 }));
    expect(first.interrupted).toBe(true);
    expect(first.rows).toBeGreaterThan(0);
    expect(first.rows).toBeLessThan(images.length);
    expect(await readSummary(out)).toMatchObject({ model: { name: 'tiny' }, written: { bytes: (await readFile(out)).length } });
    expect((await readSummary(out))!.finishedAt).toBeUndefined();
    // As if power failed in the middle of an append: half a line at the end.
    await appendFile(out, '99,half-writ');
    const second = await predict(pkg, options({ out, resume: true }));
    expect(second.resumed.rows).toBe(first.rows);
    expect(second.rows + first.rows).toBe(images.length + 1);
    const a = (await csvRows(whole)).map((r) => r.raw.split(',').slice(0, 3).join(','));
    const b = (await csvRows(out)).map((r) => r.raw.split(',').slice(0, 3).join(','));
    expect(b).toEqual(a);
    // Nothing left: a third resume writes no rows.
    const third = await predict(pkg, options({ out, resume: true }));
    expect(third.rows).toBe(0);
    expect(third.resumed.rows).toBe(images.length + 1);
  });

  it('refuses to resume a file written with other columns', async () => {
    const out = path.join(tmp.dir, 'cols.csv');
    await predict(pkg, options({ out, topK: 1 }));
    await expect(predict(pkg, options({ out, resume: true, topK: 3 }))).rejects.toThrow(/written as csv with --top-k 1, this run writes csv with --top-k 3/);
  });
});

describe('predict --shard and --merge', () => {
  it('assigns each key to one shard, the same way every time', async () => {
    expect(parseShard('2/3')).toEqual({ index: 2, count: 3 });
    expect(() => parseShard('3/3')).toThrow(/0-based/);
    expect(() => parseShard('x')).toThrow(/not i\/n/);
    const counts = [0, 0, 0];
    for (let i = 0; i < 3000; i++) counts[shardOf(`img/${i}.jpg`, 3)]!++;
    for (const c of counts) expect(c).toBeGreaterThan(850);
    // The same on every machine and mlctl version a sharded job's pods may run: a function of the key alone, as
    // documented (sha256 of the key, its first 32 bits big-endian, mod n), recomputed here with WebCrypto.
    for (const count of [2, 3, 7, 16]) {
      for (let i = 0; i < 200; i++) {
        const key = `d${i % 7}/img ${i}.jpg`;
        const digest = new DataView(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(key)));
        expect(shardOf(key, count), `${key} of ${count}`).toBe(digest.getUint32(0) % count);
      }
    }
  });

  it('3 shards merged give the rows of one run; incomplete or mixed sets are refused', async () => {
    const whole = path.join(tmp.dir, 'one.csv');
    await predict(pkg, options({ out: whole, topK: 3 }));
    const dir = path.join(tmp.dir, 'shards');
    const outs: string[] = [];
    let total = 0;
    for (let i = 0; i < 3; i++) {
      const out = path.join(dir, `predictions-${i}-of-3.csv`);
      outs.push(out);
      const res = await predict(pkg, options({ out, topK: 3, shard: { index: i, count: 3 }, batchSize: 3 }));
      expect(res.rows).toBeLessThan(images.length);
      total += res.rows;
    }
    expect(total).toBe(images.length + 1);
    await expect(mergeShards(outs.slice(0, 2), path.join(tmp.dir, 'm.csv'))).rejects.toThrow(/shard\(s\) 2\/3 missing/);
    const merged = path.join(tmp.dir, 'merged.csv');
    const res = await mergeShards([dir], merged);
    expect(res).toMatchObject({ shards: 3, rows: images.length + 1, errors: 1 });
    const a = await csvRows(whole);
    const b = await csvRows(merged);
    expect(b.map((r) => [r.index, r.input, r.error])).toEqual(a.map((r) => [r.index, r.input, r.error]));
    b.forEach((r, i) => {
      const x = r.raw.trim().split(','), y = a[i]!.raw.trim().split(',');
      expect([x[2], x[4], x[6]]).toEqual([y[2], y[4], y[6]]);
      for (const c of [3, 5, 7]) if (x[c]) expect(Number(x[c])).toBeCloseTo(Number(y[c]), 5);
    });
    expect(await readSummary(merged)).toMatchObject({ shard: { index: 0, count: 1 }, rows: images.length + 1 });
    // A shard from another run (other --top-k) does not belong to this set.
    const odd = path.join(tmp.dir, 'odd-0-of-3.csv');
    await predict(pkg, options({ out: odd, topK: 1, shard: { index: 0, count: 3 } }));
    await expect(mergeShards([odd, outs[1]!, outs[2]!], path.join(tmp.dir, 'x.csv'))).rejects.toThrow(/different run/);
    // An unfinished shard (no summary) is refused with the way out.
    await writeFile(summaryPath(outs[1]!) + '.bak', '');
    const { rm } = await import('node:fs/promises');
    await rm(summaryPath(outs[1]!));
    await expect(mergeShards(outs, path.join(tmp.dir, 'y.csv'))).rejects.toThrow(/did not finish \(run it again with --resume\)/);
  });
});

describe('FingerprintSet', () => {
  it('remembers what was added across growth and nothing else', () => {
    const s = new FingerprintSet();
    for (let i = 0; i < 20000; i++) s.add(`k${i}`);
    s.add('k1');
    expect(s.size).toBe(20000);
    for (let i = 0; i < 20000; i += 997) expect(s.has(`k${i}`)).toBe(true);
    for (let i = 20000; i < 21000; i++) expect(s.has(`k${i}`)).toBe(false);
  });
});
