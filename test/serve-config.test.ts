// mlctl serve from code: a typed ServeConfig (no option bag) and a ModelSource of one's own, started with
// startServe(); plugins registered by what they declare they depend on, whatever order they are listed in.
import * as grpc from '@grpc/grpc-js';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MlctlError } from '../src/errors.js';
import { assembleServe } from '../src/serve/assemble.js';
import { serveConfig } from '../src/serve/config.js';
import { predictV2Service } from '../src/serve/grpc/proto.js';
import { createServeMetrics } from '../src/serve/metrics.js';
import { createRepository } from '../src/serve/repository.js';
import { buildServer, registrationOrder } from '../src/serve/server.js';
import { startServe } from '../src/serve/serve.js';
import { packageDirVersion, type ModelSource } from '../src/serve/source.js';
import { createMemoryLogger } from '../src/util/log.js';
import { tempDir, tinyPackage } from './helpers/fixtures.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let dirs: string[];

beforeAll(async () => {
  tmp = await tempDir('mlctl-serve-config-');
  // Two models in two unrelated folders: no directory holds both, a source of one's own lists them.
  const a = await tinyPackage(path.join(tmp.dir, 'here'), { name: 'alpha', seed: 1 });
  const b = await tinyPackage(path.join(tmp.dir, 'there'), { name: 'beta', seed: 2, labels: ['x', 'y'] });
  dirs = [a.dir, b.dir];
});
afterAll(() => tmp?.cleanup());

/** A ModelSource that is not a directory: a fixed list of versions (a registry or a URL would fetch them). */
const listSource = (): ModelSource => ({ ref: 'two packages', versions: async () => dirs.map((d) => packageDirVersion(d)) });

describe('startServe(ServeConfig)', () => {
  it('serves a ModelSource of its own over REST and gRPC from a typed configuration', async () => {
    const logger = createMemoryLogger();
    const config = serveConfig(listSource(), { port: 0, engine: 'tfjs', batching: { maxBatch: 2, maxDelayMs: 1 }, grpc: { port: 0, maxMessageBytes: 8 * 1024 * 1024 }, metricsPort: 0 });
    const { server, loaded, failed } = await startServe(config, { logger, httpLogger: false, metrics: createServeMetrics({ defaultMetrics: false }), engineThread: false });
    try {
      expect(loaded.map((m) => `${m.name}@${m.version}`)).toEqual(['alpha@1', 'beta@1']);
      expect(failed).toEqual([]);
      expect(loaded.map((m) => m.source.location)).toEqual(dirs);
      const meta = await (await fetch(`${server.url}/v2/models/beta`)).json();
      expect(meta).toMatchObject({ name: 'beta', outputs: [{ name: 'predictions', datatype: 'FP32', shape: [-1, 2] }] });
      // The page and the docs are on by default; the metrics port and gRPC started with the app.
      expect((await fetch(`${server.url}/`)).status).toBe(200);
      expect((await fetch(`${server.url}/openapi.json`)).status).toBe(200);
      const info = server.app.mlctl.info;
      expect((await fetch(`http://${info.metrics as string}/metrics`)).status).toBe(200);
      const client = new (predictV2Service())(info.grpc as string, grpc.credentials.createInsecure());
      const live = await new Promise<{ live: boolean }>((resolve, reject) => (client as any).ServerLive({}, (e: Error | null, r: { live: boolean }) => (e ? reject(e) : resolve(r))));
      expect(live.live).toBe(true);
      client.close();
    } finally {
      await server.shutdown('test done');
    }
  });

  it('serves each version from --instances engines side by side, as Triton\'s instance_group count says, with the same answers', async () => {
    const logger = createMemoryLogger();
    const answers: number[][][] = [];
    for (const instances of [1, 2]) {
      const config = serveConfig(dirs[1]!, { port: 0, engine: 'onnx', batching: { maxBatch: 1, maxDelayMs: 0, instances }, web: { ui: false, docs: false } });
      const { server } = await startServe(config, { logger, httpLogger: false, metrics: createServeMetrics({ defaultMetrics: false }) });
      try {
        const cfg = (await (await fetch(`${server.url}/v2/models/beta/config`)).json()) as { instance_group: Array<{ count: number; kind: string }> };
        expect(cfg.instance_group).toEqual([{ count: instances, kind: 'KIND_CPU' }]);
        const meta = (await (await fetch(`${server.url}/v2/models/beta`)).json()) as { inputs: Array<{ name: string; shape: number[] }> };
        const width = meta.inputs[0]!.shape.slice(1).reduce((a, b) => a * b, 1);
        const infer = (k: number) =>
          fetch(`${server.url}/v2/models/beta/infer`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ inputs: [{ name: meta.inputs[0]!.name, datatype: 'FP32', shape: meta.inputs[0]!.shape.map((d, i) => (i === 0 ? 1 : d)), data: Array.from({ length: width }, (_, i) => ((i * 13 + k * 7) % 17) / 17) }] }),
          }).then(async (r) => ((await r.json()) as { outputs: Array<{ data: number[] }> }).outputs[0]!.data);
        answers.push(await Promise.all(Array.from({ length: 8 }, (_, k) => infer(k))));
      } finally {
        await server.shutdown('test done');
      }
    }
    expect(logger.lines.some((l) => /loaded beta v1 \(2 instances of onnxruntime-node .*, 1 thread/.test(l.msg))).toBe(true);
    for (const [k, a] of answers[0]!.entries()) for (const [i, v] of a.entries()) expect(answers[1]![k]![i]).toBeCloseTo(v, 6);
  });

  it('answers every picture of concurrent batched requests as if it came alone, round after round', async () => {
    // Pictures of different sizes, decoded concurrently into their requests' buffers and stacked into shared batches.
    const pictures = await Promise.all(Array.from({ length: 6 }, (_, i) => sharp({ create: { width: 40 + 8 * i, height: 30 + 4 * i, channels: 3, background: { r: 40 * i, g: 255 - 30 * i, b: (90 * i) % 256 } } }).jpeg().toBuffer()));
    const config = serveConfig(dirs[0]!, { port: 0, engine: 'onnx', batching: { maxBatch: 4, maxDelayMs: 20 }, web: { ui: false, docs: false } });
    const { server } = await startServe(config, { logger: createMemoryLogger(), httpLogger: false, metrics: createServeMetrics({ defaultMetrics: false }) });
    try {
      const predict = (jpeg: Buffer) => fetch(`${server.url}/predict`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: jpeg }).then((r) => r.json() as Promise<{ predictions: number[][]; labels: Array<Array<{ label: string; score: number }>> }>);
      const alone = [];
      for (const p of pictures) alone.push(await predict(p));
      for (let round = 0; round < 3; round++) {
        const together = await Promise.all(pictures.map(predict));
        for (const [i, t] of together.entries()) {
          expect(t.labels[0]!.map((x) => x.label)).toEqual(alone[i]!.labels[0]!.map((x) => x.label));
          expect(t.predictions[0]!).toHaveLength(3);
          for (const [k, p] of t.predictions[0]!.entries()) expect(p).toBeCloseTo(alone[i]!.predictions[0]![k]!, 5);
        }
      }
      const stats = (await (await fetch(`${server.url}/v2/models/alpha/stats`)).json()) as { model_stats: Array<{ inference_count: number; execution_count: number }> };
      // Some requests did share a batch.
      expect(stats.model_stats[0]!.execution_count).toBeLessThan(stats.model_stats[0]!.inference_count);
    } finally {
      await server.shutdown('test done');
    }
  });

  it('refuses --watch and model control for a source that is not a model directory', async () => {
    const repo = createRepository({ engine: 'tfjs', engineThread: false });
    const err = await assembleServe(serveConfig(listSource(), { modelDir: { control: true } }), { repo, logger: createMemoryLogger() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MlctlError);
    expect((err as MlctlError).code).toBe('OPTION_CONFLICT');
    expect((err as Error).message).toMatch(/two packages is not served from one/);
  });
});

describe('plugins declare what they depend on', () => {
  it('registers them dependencies first whatever order they are listed in, and refuses a missing dependency', async () => {
    const repo = createRepository({ engine: 'tfjs', engineThread: false, maxBatch: 1 });
    await repo.load(dirs[0]!);
    const logger = createMemoryLogger();
    const assembled = await assembleServe(serveConfig(dirs[0]!, {}), { repo, logger });
    const reversed = [...assembled.plugins].reverse();
    const names = (list: typeof reversed) => list.map((p) => ((p.plugin as unknown as Record<symbol, { name?: string }>)[Symbol.for('plugin-meta')]?.name ?? '?'));
    expect(names(reversed).indexOf('mlctl-ui')).toBeLessThan(names(reversed).indexOf('mlctl-hygiene'));
    const ordered = names(registrationOrder(reversed));
    for (const [before, after] of [['mlctl-hygiene', 'mlctl-auth'], ['mlctl-auth', 'mlctl-ui'], ['mlctl-hygiene', 'mlctl-docs']]) expect(ordered.indexOf(before!)).toBeLessThan(ordered.indexOf(after!));
    const app = buildServer(repo, { logger: false, docs: true, plugins: reversed });
    await app.ready();
    const page = await app.inject({ method: 'GET', url: '/' });
    expect(page.statusCode).toBe(200);
    // Hygiene's headers cover the page because hygiene was registered first.
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    await app.close();

    const withoutHygiene = assembled.plugins.filter((p) => names([p])[0] !== 'mlctl-hygiene');
    const broken = buildServer(createRepository({ engine: 'tfjs' }), { logger: false, docs: true, plugins: withoutHygiene });
    await expect(broken.ready()).rejects.toThrow(/mlctl-hygiene/);
    await broken.close().catch(() => {});
    await repo.close();
  });
});
