// The HTML pages mlctl writes — evaluate --report's index.html and train's history.html — checked as files
// (self-contained: no script, nothing fetched, thumbnails are real JPEGs) and in a real browser (chromium): every
// section renders, nothing is requested from the network, no console errors, non-blank at desktop and phone sizes.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadedPackage } from '../src/artifacts/package.js';
import type { EpochMetrics } from '../src/heads/head.js';
import { historyHtml, phaseSpans } from '../src/train/history.js';
import { launchBrowser, pngSpread, watchedPage, type BrowserSession } from './helpers/browser.js';
import { runCli } from './helpers/cli.js';
import { synthDataset, tempDir, tinyPackage } from './helpers/fixtures.js';
import { tools } from './helpers/tools.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let data: string;
let pkgA: LoadedPackage;
let pkgB: LoadedPackage;
let reportDir: string;
let reportJson: any;

const VIEWPORTS = [
  { width: 1280, height: 900 },
  { width: 390, height: 844, isMobile: true, deviceScaleFactor: 1 },
];

beforeAll(async () => {
  tmp = await tempDir('mlctl-report-');
  process.env.MLCTL_CACHE = path.join(tmp.dir, 'cache');
  data = path.join(tmp.dir, 'data');
  await synthDataset(data, { classes: 3, perClass: 8, size: 32 });
  pkgA = await tinyPackage(path.join(tmp.dir, 'artifacts'), { name: 'a', labels: ['circle', 'square', 'triangle'], seed: 3 });
  pkgB = await tinyPackage(path.join(tmp.dir, 'artifacts'), { name: 'b', labels: ['circle', 'square', 'triangle'], seed: 11 });
  reportDir = path.join(tmp.dir, 'report');
  const r = await runCli(['evaluate', pkgA.dir, pkgB.dir, '--data', data, '--split', 'all', '--report', reportDir, '--latency-runs', '3', '--worst', '4', '--min-accuracy', '0', '--engine', 'tfjs', '--backend', 'cpu', '--json']);
  expect(r.code).toBe(0);
  reportJson = r.json;
});

afterAll(async () => {
  delete process.env.MLCTL_CACHE;
  await tmp?.cleanup();
});

describe('evaluate --report index.html (as a file)', () => {
  it('is listed with the other report files and carries the same figures', async () => {
    expect(reportJson.reportFiles).toContain('index.html');
    const html = await readFile(path.join(reportDir, 'index.html'), 'utf8');
    for (const [i, r] of (reportJson.results as any[]).entries()) {
      expect(html).toContain(`${r.model.name} v${r.model.version}`);
      expect(html).toContain(`${(r.metrics.accuracy * 100).toFixed(1)}%`);
      expect(html).toContain(`id="model-${i + 1}-confusion"`);
      // Every confusion count appears as text in its heat-map cell.
      for (const row of r.metrics.confusion as number[][]) for (const c of row) expect(html).toContain(`>${c}</text>`);
    }
    expect(html).toContain('id="comparison"');
    expect(html).toContain('Quality gates: all passed');
  });

  it('is self-contained: no script, no external reference, images are data: URIs with real JPEG thumbnails', async () => {
    const html = await readFile(path.join(reportDir, 'index.html'), 'utf8');
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/<link/i);
    // The only URL is the SVG namespace (an identifier, never fetched).
    expect([...html.matchAll(/https?:\/\/[^\s"')]+/g)].map((m) => m[0]).filter((u) => u !== 'http://www.w3.org/2000/svg')).toEqual([]);
    expect(html).toContain(`default-src 'none'`);
    const thumbs = [...html.matchAll(/<img src="data:image\/jpeg;base64,([^"]+)"/g)].map((m) => Buffer.from(m[1]!, 'base64'));
    // Loaded eagerly: a lazy image is blank in a printed page or a headless capture of it.
    expect(html).not.toMatch(/loading="lazy"/);
    const wrong = (reportJson.results as any[]).reduce((n, r) => n + r.metrics.mostConfidentWrong.length, 0);
    expect(wrong).toBeGreaterThan(0);
    expect(thumbs).toHaveLength(wrong);
    for (const t of thumbs) {
      const m = await sharp(t).metadata();
      expect(m.format).toBe('jpeg');
      expect(Math.max(m.width!, m.height!)).toBeLessThanOrEqual(160);
    }
  });
});

describe('history.html (as a file)', () => {
  const history: EpochMetrics[] = [
    ...[1.0, 0.7, 0.55, 0.6, 0.62].map((l, i) => ({ epoch: i + 1, phase: 'head' as const, loss: l, accuracy: 0.5 + i * 0.08, valLoss: l + 0.05, valAccuracy: 0.45 + i * 0.07, lr: 0.001, seconds: 1.5 })),
    ...[0.5, 0.45, 0.47].map((l, i) => ({ epoch: i + 1, phase: 'fine-tune' as const, loss: l, accuracy: 0.85 + i * 0.02, valLoss: l + 0.02, valAccuracy: 0.82 + i * 0.02, lr: 0.0001, seconds: 6 })),
  ];

  it('finds the phase boundary, the best epoch of each phase and early stops', () => {
    // Head: best val_loss at position 3, ended at 5 of 6 epochs (patience 2); fine-tune: best at 7, ran 3 of 6.
    expect(phaseSpans(history, 6)).toEqual([
      { phase: 'head', first: 1, last: 5, best: 3, stoppedEarly: true },
      { phase: 'fine-tune', first: 6, last: 8, best: 7, stoppedEarly: true },
    ]);
    expect(phaseSpans(history, 5)[0]!.stoppedEarly).toBe(false);
    const html = historyHtml(history, { name: 'flowers', epochs: 6, patience: 2, metrics: { bestEpoch: 7, valAccuracy: 0.84 }, training: { epochs: 6, batchSize: 32, augment: ['flip'] } });
    expect(html).toContain('fine-tune starts');
    expect(html).toContain('best head epoch 3');
    expect(html).toContain('best fine-tune epoch 7');
    expect(html).toContain('early stop (head)');
    expect(html).toContain('<td>augment</td><td>[&quot;flip&quot;]</td>');
    expect(html).not.toMatch(/<script/i);
  });
});

describe.skipIf(!tools.chromium)('the pages in a real browser (chromium)', () => {
  let session: BrowserSession;
  beforeAll(async () => {
    session = await launchBrowser();
  }, 60_000);
  afterAll(async () => {
    await session?.close();
  });

  /** Open a page from disk at a viewport; fail on console errors, page errors or any non-file, non-data request. */
  async function open(file: string, viewport: (typeof VIEWPORTS)[number]) {
    const { page, problems } = await watchedPage(session.browser, viewport);
    await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
    expect(problems.console).toEqual([]);
    expect(problems.pageErrors).toEqual([]);
    expect(problems.failedRequests).toEqual([]);
    expect(problems.requests.filter((u) => !u.startsWith('file:') && !u.startsWith('data:'))).toEqual([]);
    return page;
  }

  /** Each listed element is laid out, on screen when scrolled to, and its screenshot is not a blank rectangle. */
  async function expectRendered(page: Awaited<ReturnType<typeof open>>, selectors: string[]) {
    for (const sel of selectors) {
      const el = await page.$(sel);
      expect(el, sel).not.toBeNull();
      const box = await el!.boundingBox();
      expect(box!.width, sel).toBeGreaterThan(50);
      expect(box!.height, sel).toBeGreaterThan(20);
      const shot = await el!.screenshot({ type: 'png' });
      expect((await pngSpread(shot)).stdev, `${sel} is blank`).toBeGreaterThan(8);
    }
  }

  it('renders every section of the evaluation report at desktop and phone widths', async () => {
    const sections = ['#comparison', '#gates'];
    for (const i of [1, 2]) for (const s of ['', '-classes', '-confusion', '-calibration', '-latency', '-worst']) sections.push(`#model-${i}${s}`);
    for (const vp of VIEWPORTS) {
      const page = await open(path.join(reportDir, 'index.html'), vp);
      await expectRendered(page, [...sections, '#model-1-confusion svg', '#model-1-calibration svg', '#model-1-latency svg']);
      // Thumbnails decoded by the browser, and the page does not scroll sideways on a phone.
      const imgs = await page.$$eval('.thumb img', (els) => els.map((e) => (e as unknown as { naturalWidth: number }).naturalWidth));
      expect(imgs.length).toBeGreaterThan(0);
      expect(imgs.every((w) => w > 0)).toBe(true);
      const overflow = (await page.evaluate('document.documentElement.scrollWidth - window.innerWidth')) as number;
      expect(overflow).toBeLessThanOrEqual(1);
      const full = await page.screenshot({ type: 'png', fullPage: true });
      const spread = await pngSpread(full);
      expect(spread.width).toBe(vp.width);
      expect(spread.stdev).toBeGreaterThan(8);
      // Deltas are coloured: the second model's row has good/bad classes in its delta cells.
      expect(await page.$$eval('table.compare tbody tr:nth-child(2) td.good, table.compare tbody tr:nth-child(2) td.bad', (e) => e.length)).toBeGreaterThan(0);
      await page.close();
    }
  }, 120_000);

  it('renders the training history page with its curves and markers', async () => {
    const file = path.join(tmp.dir, 'history.html');
    const history: EpochMetrics[] = [0.9, 0.6, 0.5, 0.4].map((l, i) => ({ epoch: i + 1, phase: i < 2 ? 'head' : 'fine-tune', loss: l, accuracy: 0.6 + i * 0.1, valLoss: l + 0.1, valAccuracy: 0.55 + i * 0.1, lr: i < 2 ? 0.001 : 0.0001, seconds: 2 }));
    await writeFile(file, historyHtml(history, { name: 'demo', epochs: 2, training: { epochs: 2 } }));
    for (const vp of VIEWPORTS) {
      const page = await open(file, vp);
      await expectRendered(page, ['#curves', '#params', '#epochs', '#curves figure:nth-child(1) svg', '#curves figure:nth-child(2) svg']);
      const texts = await page.$$eval('#curves svg text', (els) => els.map((e) => e.textContent));
      expect(texts).toContain('fine-tune starts');
      expect(await page.$$eval('#curves svg polyline', (e) => e.length)).toBeGreaterThanOrEqual(5);
      await page.close();
    }
  }, 60_000);
});
