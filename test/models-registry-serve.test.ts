// `mlctl serve NAME:TAG --watch` as a real process: it serves the tagged version and, when `models tag` moves the
// tag (forward, then back as a rollback), loads the new target, switches to it and unloads the old one. And the
// lifecycle gate downstream: a version `quantize` marked rejected is not what `serve NAME` / `predict NAME` run.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tagVersion } from '../src/registry/tags.js';
import { launchBrowser, watchedPage } from './helpers/browser.js';
import { runCli, spawnCli } from './helpers/cli.js';
import { fragileColours, mlctlHome, tinyPackage, type MlctlHome } from './helpers/fixtures.js';
import { tools } from './helpers/tools.js';

let tmp: MlctlHome;
let root: string;
let data: string;

beforeAll(async () => {
  tmp = await mlctlHome('mlctl-registry-serve-');
  root = tmp.artifacts;
  await tinyPackage(root, { name: 'tiny', seed: 1 });
  await tinyPackage(root, { name: 'tiny', seed: 2 });
  await tagVersion('tiny@1', 'production', { root });
  data = path.join(tmp.dir, 'colours');
  await fragileColours(root, data);
});

afterAll(() => tmp?.cleanup());

async function servedVersions(url: string): Promise<string[]> {
  const res = await fetch(`${url}/v2/models/tiny`);
  return res.ok ? ((await res.json()) as { versions: string[] }).versions : [];
}

async function until(check: () => Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('serve NAME:TAG --watch', () => {
  it('serves the tagged version and hot-swaps when the tag moves (and back)', async () => {
    const args = ['serve', 'tiny:production', '--watch', '--watch-interval', '200ms', '--port', '0', '--engine', 'tfjs', '--backend', 'cpu', '--max-batch', '1'];
    const cli = spawnCli(args);
    try {
      const url = await cli.listening();
      expect(await servedVersions(url)).toEqual(['1']);
      await tagVersion('tiny@2', 'production', { root });
      await until(async () => JSON.stringify(await servedVersions(url)) === '["2"]', 'the switch to v2');
      await tagVersion('tiny@1', 'production', { root });
      await until(async () => JSON.stringify(await servedVersions(url)) === '["1"]', 'the rollback to v1');
      await until(async () => /tiny:production points at v1; unloaded v2/.test(cli.err()), 'the unload to be logged');
    } finally {
      cli.child.kill('SIGTERM');
      await cli.exited;
    }
  }, 60_000);
});

describe('a version the quality gate rejected (#28)', () => {
  const cpu = ['--engine', 'tfjs', '--backend', 'cpu'];
  const postImage = async (url: string, query: string, file: string) => {
    const res = await fetch(`${url}/predict?${query}`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: await fs.readFile(file) });
    expect(res.status).toBe(200);
    return (await res.json()) as { model: string; version: number };
  };

  it('is not what predict NAME / serve NAME run; named, it needs --allow-rejected and says so; the page marks it', async () => {
    // A real rejection: uint8 quantization of this model drops accuracy from 1 to 1/3.
    const q = await runCli(['quantize', 'colours', '--dtype', 'uint8', '--data', data, '--max-accuracy-drop', '0.01', '--latency-runs', '0', '--backend', 'cpu', '--json']);
    expect(q.code).toBe(3);
    expect(q.json).toMatchObject({ status: 'rejected', package: { name: 'colours', version: 2 } });
    const img = path.join(data, 'red', '0.png');
    const out = (n: string) => path.join(tmp.dir, `pred-${n}.csv`);

    // predict NAME: the newest version that is not rejected.
    const bare = await runCli(['predict', 'colours', img, '--out', out('bare'), ...cpu, '--json']);
    expect(bare.code).toBe(0);
    expect(bare.json.model).toMatchObject({ name: 'colours', version: 1 });
    expect((await fs.readFile(out('bare'), 'utf8')).split('\n')[1]).toMatch(/,red,/);
    // Named explicitly: refused without --allow-rejected, nothing written.
    const named = await runCli(['predict', 'colours@2', img, '--out', out('named'), ...cpu, '--json']);
    expect(named.code).toBe(1);
    expect(named.json.error.code).toBe('VERSION_REJECTED');
    expect(named.json.error.message).toMatch(/colours v2 is marked rejected \(.*accuracy.*\): pass --allow-rejected/);
    expect(await fs.stat(out('named')).catch(() => undefined)).toBeUndefined();
    const allowed = await runCli(['predict', 'colours@2', img, '--out', out('allowed'), ...cpu, '--allow-rejected', '--json']);
    expect(allowed.code).toBe(0);
    expect(allowed.json.model.version).toBe(2);
    expect(allowed.stderr).toMatch(/colours v2 is marked rejected.*--allow-rejected/);

    // serve colours@2: refused at start.
    const refused = await runCli(['serve', 'colours@2', '--port', '0', ...cpu, '--json']);
    expect(refused.code).toBe(1);
    expect(refused.json.error.code).toBe('VERSION_REJECTED');

    // serve NAME: v1 answers; v2 is reported unavailable with the reason.
    const plain = spawnCli(['serve', 'colours', '--port', '0', ...cpu, '--max-batch', '1']);
    try {
      const url = await plain.listening();
      expect(await postImage(url, 'model=colours', img)).toMatchObject({ model: 'colours', version: 1 });
      expect(plain.err()).toMatch(/model colours v2 is unavailable .*colours v2 is marked rejected .*--allow-rejected/);
    } finally {
      plain.child.kill('SIGTERM');
      await plain.exited;
    }

    // With --allow-rejected both load; a request that names no version still gets v1, and the page marks v2.
    const both = spawnCli(['serve', 'colours', '--port', '0', ...cpu, '--max-batch', '1', '--allow-rejected']);
    try {
      const url = await both.listening();
      expect(await postImage(url, 'model=colours', img)).toMatchObject({ version: 1 });
      expect(await postImage(url, 'model=colours&version=2', img)).toMatchObject({ version: 2 });
      const ui = (await (await fetch(`${url}/ui/models`)).json()) as { models: Array<{ version: number; status: string; statusReason?: string }> };
      expect(ui.models.find((m) => m.version === 2)).toMatchObject({ status: 'rejected', statusReason: expect.stringMatching(/accuracy/) });
      expect(ui.models.find((m) => m.version === 1)).toMatchObject({ status: 'ok' });
      if (tools.chromium) {
        // What a person sees: the rejected version is labelled in the picker and in the model's details.
        const session = await launchBrowser();
        try {
          const { page, problems } = await watchedPage(session.browser);
          await page.goto(`${url}/`, { waitUntil: 'networkidle0' });
          await page.waitForSelector('#app:not([hidden])');
          expect(await page.$$eval('#model option', (o) => o.map((x) => x.textContent))).toEqual(['colours v2 (rejected)', 'colours v1']);
          await page.select('#model', 'colours@2');
          expect(await page.$eval('#meta', (e) => e.textContent)).toMatch(/statusREJECTED by a quality gate: .*accuracy.*\(served with --allow-rejected\)/);
          await page.select('#model', 'colours@1');
          expect(await page.$eval('#meta', (e) => e.textContent)).not.toMatch(/REJECTED/);
          expect(problems.pageErrors).toEqual([]);
        } finally {
          await session.close();
        }
      }
      expect(both.err()).toMatch(/colours v2 is marked rejected .*served because of --allow-rejected/);
    } finally {
      both.child.kill('SIGTERM');
      await both.exited;
    }
  }, 120_000);
});
