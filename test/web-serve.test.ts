// mlctl serve's web face: the page at / and the API docs, on real servers started as `mlctl serve` starts them
// (assembleServe: security and web plugins), checked over HTTP and in a real browser (chromium via puppeteer-core): the page
// predicts what POST /predict predicts (file upload and a fake camera), asks for a key on a keyed server and keeps
// it in the tab only, works over TLS, and /docs lists every route of the OpenAPI document.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PAGE_CSP, UI_DIR } from '../src/serve/ui.js';
import { launchBrowser, watchedPage, type BrowserSession } from './helpers/browser.js';
import { synthDataset, tempDir, tinyPackage } from './helpers/fixtures.js';
import { tools } from './helpers/tools.js';
import { makePki, startSecureServer, type SecureServer, type TestPki } from './serve-security-helpers.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let artifacts: string;
let imageFile: string;
const KEY = 'k3y-for-the-page-test-0123456789';

beforeAll(async () => {
  tmp = await tempDir('mlctl-web-');
  artifacts = path.join(tmp.dir, 'artifacts');
  await tinyPackage(artifacts, { name: 'tiny', labels: ['circle', 'square', 'triangle'], seed: 3 });
  await tinyPackage(artifacts, { name: 'other', labels: ['checker', 'circle', 'square'], seed: 5 });
  const data = path.join(tmp.dir, 'data');
  await synthDataset(data, { classes: 3, perClass: 1, size: 48 });
  const dir = path.join(data, 'square');
  imageFile = path.join(dir, (await fs.readdir(dir))[0]!);
}, 60_000);

afterAll(async () => {
  await tmp?.cleanup();
});

/** What POST /predict answers for the test image (the reference the page must match). */
async function predictDirect(url: string, model: string, topK: number, key?: string): Promise<{ labels: Array<Array<{ label: string; score: number }>> }> {
  const body = await fs.readFile(imageFile);
  const type = imageFile.endsWith('.png') ? 'image/png' : 'image/jpeg';
  const res = await fetch(`${url}/predict?model=${model}&top_k=${topK}`, { method: 'POST', body, headers: { 'content-type': type, ...(key ? { authorization: `Bearer ${key}` } : {}) } });
  expect(res.status).toBe(200);
  return res.json() as Promise<{ labels: Array<Array<{ label: string; score: number }>> }>;
}

describe('the page and the docs over HTTP', () => {
  let srv: SecureServer;
  beforeAll(async () => {
    srv = await startSecureServer(artifacts, { allowModelControl: true });
  }, 60_000);
  afterAll(async () => srv?.close());

  it('brands /docs as mlctl: title, favicon (the page\'s icon) and the top bar\'s logo, none of the plugin\'s own', async () => {
    const html = await (await fetch(`${srv.url}/docs`)).text();
    expect(html).toContain('<title>mlctl serve — API docs</title>');
    const icons = [...html.matchAll(/<link rel="icon"[^>]*href="([^"]+)"/g)].map((m) => m[1]!);
    expect(icons).toHaveLength(1);
    expect(icons[0]).toMatch(/\/theme\/favicon\.svg$/);
    expect(html).not.toMatch(/favicon-(16|32)x/);
    const icon = await fetch(new URL(icons[0]!, `${srv.url}/docs`));
    expect(icon.headers.get('content-type')).toBe('image/svg+xml');
    expect(await icon.text()).toBe(await fs.readFile(path.join(UI_DIR, 'icon.svg'), 'utf8'));
    const init = await (await fetch(`${srv.url}/docs/static/swagger-initializer.js`)).text();
    const logo = /img\.src = 'data:image\/svg\+xml;base64,([^']+)'/.exec(init);
    expect(logo, 'the logo replaces the top bar\'s').not.toBeNull();
    expect(Buffer.from(logo![1]!, 'base64').toString()).toMatch(/<svg[\s\S]*mlctl serve/);
  });

  it('serves the page with a strict CSP: code and styles only as files from this server', async () => {
    const res = await fetch(`${srv.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toBe(PAGE_CSP);
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|https?:/);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await res.text();
    expect(html).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);
    for (const m of html.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)) {
      expect(m[1]).toMatch(/src="\/ui\/app\.js"/);
      expect(m[2]!.trim()).toBe('');
    }
    for (const [file, type] of [['app.js', 'text/javascript'], ['app.css', 'text/css'], ['icon.svg', 'image/svg+xml']]) {
      const a = await fetch(`${srv.url}/ui/${file}`);
      expect(a.status).toBe(200);
      expect(a.headers.get('content-type')).toContain(type!);
    }
  });

  it('GET /ui/models lists every loaded model with what the page shows', async () => {
    const body = (await (await fetch(`${srv.url}/ui/models`)).json()) as any;
    expect(body.server.name).toBe('mlctl');
    expect(body.models.map((m: any) => `${m.name}@${m.version}`)).toEqual(['other@1', 'tiny@1']);
    const tiny = body.models.find((m: any) => m.name === 'tiny');
    expect(tiny).toMatchObject({ labels: ['circle', 'square', 'triangle'], input: { kind: 'image', height: 32, width: 32 }, versions: [1], lineage: expect.any(Array), engine: expect.stringMatching(/^tfjs/) });
    expect(JSON.stringify(body)).not.toContain(artifacts); // no server paths
  });

  it('publishes an OpenAPI 3.1 document of every REST route, from the schemas that validate requests', async () => {
    const doc = (await (await fetch(`${srv.url}/openapi.json`)).json()) as any;
    expect(doc.openapi).toBe('3.1.0');
    const ops = Object.entries(doc.paths as Record<string, Record<string, any>>).flatMap(([p, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${p}`));
    for (const op of [
      'POST /predict',
      'GET /v2',
      'GET /v2/health/live',
      'GET /v2/health/ready',
      'GET /v2/models/{name}',
      'GET /v2/models/{name}/versions/{version}',
      'GET /v2/models/{name}/ready',
      'POST /v2/models/{name}/infer',
      'POST /v2/models/{name}/versions/{version}/infer',
      'GET /v1/models/{model}',
      'POST /v1/models/{model}',
      'POST /v1/models/{model}/versions/{version}',
      'POST /v2/repository/models/{name}/load',
      'POST /v2/repository/models/{name}/unload',
      'POST /v2/repository/index',
      'GET /v2/models/{name}/config',
      'GET /v2/models/stats',
      'GET /v2/models/{name}/versions/{version}/stats',
      'GET /v1/models/{model}/metadata',
      'GET /metrics',
    ]) expect(ops).toContain(op);
    expect(ops.filter((o) => o.includes('/labels/'))).toEqual([]);
    expect(ops.some((o) => / \/(ui|docs|openapi\.json|$)/.test(o))).toBe(false);
    for (const methods of Object.values(doc.paths as Record<string, Record<string, any>>)) for (const op of Object.values(methods)) expect(op.tags?.length, JSON.stringify(op.summary)).toBeGreaterThan(0);
    const predict = doc.paths['/predict'].post;
    expect(predict.parameters.find((p: any) => p.name === 'top_k')).toMatchObject({ in: 'query', schema: { type: 'integer', minimum: 0 } });
    expect(Object.keys(predict.requestBody.content)).toEqual(expect.arrayContaining(['application/json', 'multipart/form-data', 'image/jpeg']));
    expect(doc.paths['/v2/models/{name}/infer'].post.requestBody.content['application/json'].schema.required).toEqual(['inputs']);
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
  });

  it('the same schemas reject malformed requests with 400 INPUT_INVALID', async () => {
    const bad = await fetch(`${srv.url}/predict?model=tiny&top_k=lots`, { method: 'POST', body: await fs.readFile(imageFile), headers: { 'content-type': 'image/png' } });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ code: 'INPUT_INVALID', error: expect.stringMatching(/querystring\/top_k must be integer/) });
    const v2 = await fetch(`${srv.url}/v2/models/tiny/infer`, { method: 'POST', body: JSON.stringify({ inputs: [{ name: 'input', shape: { rank: 4 }, datatype: 'FP32', data: [] }] }), headers: { 'content-type': 'application/json' } });
    expect(v2.status).toBe(400);
    expect(await v2.json()).toMatchObject({ code: 'INPUT_INVALID', error: expect.stringMatching(/body\/inputs\/0\/shape must be array/) });
  });

  it('--no-ui and --no-docs turn the page and the docs off', async () => {
    const off = await startSecureServer(artifacts, { ui: false, docs: false });
    try {
      for (const p of ['/', '/ui/app.js', '/ui/models', '/docs', '/openapi.json']) expect((await fetch(`${off.url}${p}`)).status, p).toBe(404);
      expect((await fetch(`${off.url}/v2/health/live`)).status).toBe(200);
    } finally {
      await off.close();
    }
  });
});

describe.skipIf(!tools.chromium)('the page and the docs in a real browser (chromium)', () => {
  let session: BrowserSession;
  let srv: SecureServer;
  beforeAll(async () => {
    session = await launchBrowser(['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream']);
    srv = await startSecureServer(artifacts, { allowModelControl: true });
  }, 60_000);
  afterAll(async () => {
    await session?.close();
    await srv?.close();
  });

  /** The bars the page shows: [label, score text] per row, once a result is there. */
  async function bars(page: Page): Promise<Array<[string, string]>> {
    await page.waitForSelector('#result .bar', { timeout: 30_000 });
    return page.$$eval('#result .bar', (rows) => rows.map((r) => [r.querySelector('.label')!.textContent!, r.querySelector('.score')!.textContent!] as [string, string]));
  }

  it('loads cleanly and an uploaded image gets the same top labels and scores as POST /predict', async () => {
    const { page, problems } = await watchedPage(session.browser);
    await page.goto(`${srv.url}/`, { waitUntil: 'networkidle0' });
    await page.waitForSelector('#app:not([hidden])');
    expect(await page.$$eval('#model option', (o) => o.map((x) => x.textContent))).toEqual(['other v1', 'tiny v1']);
    await page.select('#model', 'tiny@1');
    expect(await page.$eval('#meta', (e) => e.textContent)).toContain('circle, square, triangle');
    const input = await page.$('#file');
    await input!.uploadFile(imageFile);
    const shown = await bars(page);
    const direct = await predictDirect(srv.url, 'tiny', 5);
    expect(shown).toEqual(direct.labels[0]!.map((l) => [l.label, l.score.toFixed(4)]));
    expect(await page.$eval('#result .latency', (e) => e.textContent)).toMatch(/^tiny v1 · request \d+ ms$/);
    expect(await page.$eval('#preview', (e) => (e as unknown as { naturalWidth: number }).naturalWidth)).toBeGreaterThan(0);
    // Each bar is drawn as long as its score (a share of its track), and the key button stays hidden without keys.
    const widths = await page.$$eval('#result .bar', (rows) => rows.map((r) => r.querySelector('.fill')!.getBoundingClientRect().width / r.querySelector('.track')!.getBoundingClientRect().width));
    widths.forEach((w, i) => expect(w).toBeCloseTo(direct.labels[0]![i]!.score, 2));
    expect(await page.$eval('#forget', (e) => e.getBoundingClientRect().width)).toBe(0);
    // Top-k follows the field.
    await page.$eval('#topk', (e) => ((e as unknown as { value: string }).value = '2'));
    await input!.uploadFile(imageFile);
    await page.waitForFunction('document.querySelectorAll("#result .bar").length === 2');
    expect(problems.console).toEqual([]);
    expect(problems.pageErrors).toEqual([]);
    expect(problems.requests.every((u) => u.startsWith(srv.url) || u.startsWith('blob:'))).toBe(true);
    await page.close();
  }, 90_000);

  it('takes a photo with the camera (getUserMedia) and classifies it', async () => {
    const { page, problems } = await watchedPage(session.browser);
    await page.goto(`${srv.url}/`, { waitUntil: 'networkidle0' });
    await page.waitForSelector('#app:not([hidden])');
    await page.click('#camera');
    await page.waitForFunction('document.getElementById("video").videoWidth > 0', { timeout: 20_000 });
    await page.click('#snap');
    const shown = await bars(page);
    expect(shown.length).toBe(3);
    const total = shown.reduce((a, [, s]) => a + Number(s), 0);
    expect(total).toBeCloseTo(1, 2); // a softmax over the three labels
    await page.click('#cam-close');
    expect(problems.console).toEqual([]);
    expect(problems.pageErrors).toEqual([]);
    await page.close();
  }, 90_000);

  it('lists every operation of the OpenAPI document in /docs (Swagger UI, local assets, no CSP violation)', async () => {
    const doc = (await (await fetch(`${srv.url}/openapi.json`)).json()) as any;
    const want = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([p, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${p}`)).sort();
    const { page, problems } = await watchedPage(session.browser);
    await page.goto(`${srv.url}/docs`, { waitUntil: 'networkidle0' });
    await page.waitForSelector('.opblock', { timeout: 30_000 });
    const shown = (await page.$$eval('.opblock', (blocks) => blocks.map((b) => `${b.querySelector('.opblock-summary-method')!.textContent!.trim()} ${b.querySelector('.opblock-summary-path')!.getAttribute('data-path')}`))).sort();
    expect(shown).toEqual(want);
    // mlctl's name, mark and favicon in the top bar and the tab, not the plugin's.
    expect(await page.title()).toBe('mlctl serve — API docs');
    const logo = await page.$eval('#swagger-ui .topbar-wrapper a.link img', (img) => img.getAttribute("src") ?? "");
    expect(Buffer.from(logo.replace(/^data:image\/svg\+xml;base64,/, ''), 'base64').toString()).toContain('mlctl serve');
    expect(problems.console).toEqual([]);
    expect(problems.pageErrors).toEqual([]);
    expect(problems.requests.filter((u) => !u.startsWith(srv.url) && !u.startsWith('data:'))).toEqual([]);
    await page.close();
  }, 90_000);
});

describe.skipIf(!tools.chromium)('a keyed server: the page asks for the key and keeps it in the tab only', () => {
  let session: BrowserSession;
  let srv: SecureServer;
  beforeAll(async () => {
    session = await launchBrowser();
    srv = await startSecureServer(artifacts, { apiKey: `page:${KEY}` });
  }, 60_000);
  afterAll(async () => {
    await session?.close();
    await srv?.close();
  });

  it('prompts, refuses a wrong key, sends the right one as a Bearer header, stores nothing beyond the tab', async () => {
    expect((await fetch(`${srv.url}/ui/models`)).status).toBe(401);
    expect((await fetch(`${srv.url}/`)).status).toBe(200);
    const { page, problems } = await watchedPage(session.browser);
    const auths: Array<string | undefined> = [];
    page.on('request', (r) => {
      if (r.url().includes('/predict') || r.url().includes('/ui/models')) auths.push(r.headers().authorization);
    });
    await page.goto(`${srv.url}/`, { waitUntil: 'networkidle0' });
    await page.waitForSelector('#auth:not([hidden])');
    await page.type('#key', 'wrong-key');
    await page.click('#key-form button');
    await page.waitForFunction('document.getElementById("key-error").textContent.length > 0');
    expect(await page.$eval('#key-error', (e) => e.textContent)).toMatch(/not accepted/);
    await page.type('#key', KEY);
    await page.click('#key-form button');
    await page.waitForSelector('#app:not([hidden])');
    await page.select('#model', 'tiny@1');
    await (await page.$('#file'))!.uploadFile(imageFile);
    const shown = await page.waitForSelector('#result .bar').then(() => page.$$eval('#result .bar .label', (e) => e.map((x) => x.textContent)));
    expect(shown[0]).toBe((await predictDirect(srv.url, 'tiny', 5, KEY)).labels[0]![0]!.label);
    expect(auths).toContain(`Bearer ${KEY}`);
    expect(auths[0]).toBeUndefined(); // the first call goes without a key, and learns it needs one
    // Not remembered: nothing in either storage; a reload asks again.
    expect(await page.evaluate('JSON.stringify([localStorage.length, sessionStorage.length])')).toBe('[0,0]');
    await page.reload({ waitUntil: 'networkidle0' });
    await page.waitForSelector('#auth:not([hidden])');
    // Remembered: in sessionStorage (this tab) only, so a reload keeps working and localStorage stays empty.
    await page.type('#key', KEY);
    await page.click('#remember');
    await page.click('#key-form button');
    await page.waitForSelector('#app:not([hidden])');
    await page.reload({ waitUntil: 'networkidle0' });
    await page.waitForSelector('#app:not([hidden])');
    expect(await page.evaluate('JSON.stringify([localStorage.length, sessionStorage.length])')).toBe('[0,1]');
    // "Forget key" clears it.
    await page.click('#forget');
    await page.waitForSelector('#auth:not([hidden])');
    expect(await page.evaluate('sessionStorage.length')).toBe(0);
    // The only console errors are the browser's own lines for the 401s the page handled.
    expect(problems.console.filter((l) => !/401 \(Unauthorized\)/.test(l))).toEqual([]);
    expect(problems.pageErrors).toEqual([]);
    await page.close();
  }, 120_000);
});

describe.skipIf(!tools.chromium || !tools.openssl)('the page over TLS', () => {
  let session: BrowserSession;
  let srv: SecureServer;
  let pki: TestPki;
  beforeAll(async () => {
    pki = await makePki(path.join(tmp.dir, 'pki'));
    session = await launchBrowser(['--ignore-certificate-errors']);
    srv = await startSecureServer(artifacts, { tlsCert: pki.serverCert, tlsKey: pki.serverKey });
  }, 60_000);
  afterAll(async () => {
    await session?.close();
    await srv?.close();
  });

  it('loads over https with HSTS and predicts', async () => {
    expect(srv.url).toMatch(/^https:/);
    const { page, problems } = await watchedPage(session.browser);
    const res = await page.goto(`${srv.url}/`, { waitUntil: 'networkidle0' });
    expect(res!.headers()['strict-transport-security']).toMatch(/max-age=/);
    await page.waitForSelector('#app:not([hidden])');
    await page.select('#model', 'tiny@1');
    await (await page.$('#file'))!.uploadFile(imageFile);
    await page.waitForSelector('#result .bar');
    expect(problems.console).toEqual([]);
    expect(problems.pageErrors).toEqual([]);
    await page.close();
  }, 90_000);
});
