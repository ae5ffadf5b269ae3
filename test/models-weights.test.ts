// ImageNet weights download: against a real HTTP server on an ephemeral loopback port — first download, cache hit,
// checksum mismatch (file discarded) and an unreachable host (clear error naming --weights PATH / none).
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MlctlError } from '../src/errors.js';
import { cachedDownload, resolveWeights } from '../src/models/weights.js';
import { createMemoryLogger } from '../src/util/log.js';
import { tempDir } from './helpers/fixtures.js';

const payload = Buffer.from(Array.from({ length: 3_000_000 }, (_, i) => (i * 31) & 0xff));
const md5 = createHash('md5').update(payload).digest('hex');
let server: http.Server;
let base: string;
let hits = 0;
let tmp: { dir: string; cleanup: () => Promise<void> };

beforeAll(async () => {
  tmp = await tempDir('mlctl-weights-');
  server = http.createServer((req, res) => {
    hits++;
    if (req.url === '/weights.h5') {
      res.writeHead(200, { 'content-length': payload.length });
      res.end(payload);
    } else {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  await tmp.cleanup();
});

describe('cachedDownload', () => {
  it('downloads once, verifies the MD5, then reuses the cached file', async () => {
    const cacheDir = path.join(tmp.dir, 'ok');
    const logger = createMemoryLogger();
    const first = await cachedDownload({ url: `${base}/weights.h5`, md5, fileName: 'w.h5', cacheDir, logger });
    expect(first.cached).toBe(false);
    expect(first.md5).toBe(md5);
    const hitsAfterFirst = hits;
    const second = await cachedDownload({ url: `${base}/weights.h5`, md5, fileName: 'w.h5', cacheDir, logger });
    expect(second).toEqual({ path: first.path, md5, cached: true });
    expect(hits).toBe(hitsAfterFirst);
    expect(logger.lines.some((l) => /downloading w\.h5/.test(l.msg))).toBe(true);
  });

  it('discards a download whose checksum does not match', async () => {
    const cacheDir = path.join(tmp.dir, 'bad');
    const err = await cachedDownload({ url: `${base}/weights.h5`, md5: '0'.repeat(32), fileName: 'w.h5', cacheDir, logger: createMemoryLogger() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MlctlError);
    expect((err as MlctlError).code).toBe('CHECKSUM_MISMATCH');
    expect((err as Error).message).toContain(md5);
    expect(await readdir(cacheDir)).toEqual([]);
  });

  it('offline with no cache: names --weights PATH and --weights none', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const err = await resolveWeights('imagenet', { logger: createMemoryLogger(), seed: 1, url: `http://127.0.0.1:${port}/x.h5`, md5, cacheDir: path.join(tmp.dir, 'offline') }).catch((e: unknown) => e);
    expect((err as MlctlError).code).toBe('WEIGHTS_UNAVAILABLE');
    expect((err as Error).message).toMatch(/--weights PATH/);
    expect((err as Error).message).toMatch(/--weights none/);
    const notFound = await cachedDownload({ url: `${base}/nope.h5`, md5, fileName: 'n.h5', cacheDir: path.join(tmp.dir, 'nf'), logger: createMemoryLogger() }).catch((e: unknown) => e);
    expect((notFound as Error).message).toMatch(/HTTP 404/);
  });

  it('resolves none and PATH without any network', async () => {
    const none = await resolveWeights('none', { logger: createMemoryLogger(), seed: 5 });
    expect(none.kind).toBe('none');
    expect(none.sha256).toContain('5');
    await expect(resolveWeights(path.join(tmp.dir, 'missing.h5'), { logger: createMemoryLogger(), seed: 5 })).rejects.toThrow(/no such file/);
  });
});

describe('resolveWeights imagenet for each backbone', () => {
  it('fetches the backbone\'s own published file name; verifies Keras\'s hash where it publishes one, records the MD5 where not (MobileNetV2)', async () => {
    const { backboneById } = await import('../src/models/backbones/index.js');
    const url = `${base}/weights.h5`;
    // MobileNetV2: keras.applications gives no file_hash — kept as downloaded, MD5 recorded, a warning says so.
    const logger = createMemoryLogger();
    const mn = await resolveWeights('imagenet', { logger, seed: 1, backbone: backboneById('mobilenet_v2'), backboneOptions: { imageSize: 160, alpha: 0.5 }, url, cacheDir: path.join(tmp.dir, 'mn') });
    expect(path.basename(mn.path!)).toBe('mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_160_no_top.h5');
    expect(mn.md5).toBe(md5);
    expect(mn.source).toMatch(/imagenet \(mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0\.5_160_no_top\.h5/);
    expect(logger.lines.some((l) => /gives no checksum/.test(l.msg))).toBe(true);
    // ResNet50 and EfficientNetB0: Keras's published MD5 is checked, so these bytes are refused.
    for (const id of ['resnet50', 'efficientnet_b0']) {
      const err = await resolveWeights('imagenet', { logger: createMemoryLogger(), seed: 1, backbone: backboneById(id), backboneOptions: { imageSize: 224 }, url, cacheDir: path.join(tmp.dir, id) }).catch((e: unknown) => e);
      expect((err as MlctlError).code).toBe('CHECKSUM_MISMATCH');
      expect((err as Error).message).toContain(backboneById(id).imagenetWeights({ imageSize: 224 }).md5!);
      expect(await readdir(path.join(tmp.dir, id))).toEqual([]);
    }
    // With the right hash (a mirror: MLCTL_<ID>_WEIGHTS_MD5 or md5), the file is accepted under Keras's name.
    const ok = await resolveWeights('imagenet', { logger: createMemoryLogger(), seed: 1, backbone: backboneById('efficientnet_b0'), backboneOptions: { imageSize: 224 }, url, md5, cacheDir: path.join(tmp.dir, 'en') });
    expect(path.basename(ok.path!)).toBe('efficientnetb0_notop.h5');
  });
});
