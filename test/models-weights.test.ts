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
