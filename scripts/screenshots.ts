// Regenerates the docs' screenshots from a real run: a synthetic dataset, two trained models (one fine-tuned,
// with --tensorboard), `evaluate --report` comparing them, and `serve` with its page — each captured by Debian's
// chromium through puppeteer-core. Writes palette PNGs (each under 200 KB) into docs/screenshots/.
//   npx tsx scripts/screenshots.ts [--out docs/screenshots] [--keep]
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import sharp from 'sharp';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CHROMIUM = process.env.MLCTL_CHROMIUM ?? '/usr/bin/chromium';
const MAX_BYTES = 200 * 1024;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

/** node arguments that run the CLI from source (main(argv) with argv[1] = "mlctl"). */
const CLI = ['--import', 'tsx', '-e', `import(${JSON.stringify(pathToFileURL(path.join(ROOT, 'src/cli/main.ts')).href)}).then(async (m) => { process.exitCode = await m.main(process.argv); })`, 'mlctl'];

/** Run mlctl as a user would (a child process), failing loudly. */
function mlctl(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...CLI, ...args], { env, cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`mlctl ${args.join(' ')} exited ${code}`))));
  });
}

/** Start `mlctl serve` and resolve once it answers; returns its base URL and a stop function. */
async function serve(args: string[], env: NodeJS.ProcessEnv): Promise<{ url: string; stop: () => void }> {
  const port = 18000 + Math.floor(Math.random() * 2000);
  const child = spawn(process.execPath, [...CLI, 'serve', ...args, '--port', String(port), '--host', '127.0.0.1'], { env, cwd: ROOT, stdio: 'inherit' });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 240; i++) {
    if (child.exitCode !== null) throw new Error(`mlctl serve exited ${child.exitCode}`);
    const ok = await fetch(`${url}/v2/health/ready`).then((r) => r.ok, () => false);
    if (ok) return { url, stop: () => child.kill('SIGTERM') };
    await new Promise((r) => setTimeout(r, 500));
  }
  child.kill('SIGTERM');
  throw new Error('mlctl serve did not come up');
}

async function save(png: Uint8Array, file: string): Promise<void> {
  // Palette PNG: screenshots of flat UI colours compress well and stay sharp.
  let out = await sharp(png).png({ palette: true, quality: 80, effort: 10, compressionLevel: 9 }).toBuffer();
  if (out.length > MAX_BYTES) out = await sharp(png).resize({ width: 1000 }).png({ palette: true, quality: 60, effort: 10, colours: 64 }).toBuffer();
  if (out.length > MAX_BYTES) throw new Error(`${file}: ${out.length} bytes is over the ${MAX_BYTES}-byte limit`);
  await writeFile(file, out);
  console.log(`${path.relative(ROOT, file)}: ${(out.length / 1024).toFixed(0)} KiB`);
}

async function shoot(browser: Browser, url: string, file: string, o: { width?: number; height?: number; before?: (p: Page) => Promise<void> } = {}): Promise<void> {
  const page = await browser.newPage();
  await page.setViewport({ width: o.width ?? 1200, height: o.height ?? 860 });
  await page.goto(url, { waitUntil: 'networkidle0' });
  await o.before?.(page);
  await save(await page.screenshot({ type: 'png' }), file);
  await page.close();
}

/** Figures for the record: index.html's size and how long writing the whole report folder takes (median of 5). */
async function measureReport(reportDir: string, scratch: string): Promise<void> {
  const { writeReport } = await import('../src/evaluate/report.js');
  const report = JSON.parse(await readFile(path.join(reportDir, 'report.json'), 'utf8'));
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    await writeReport(scratch, report);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const html = await stat(path.join(reportDir, 'index.html'));
  console.log(`report: index.html ${(html.size / 1024).toFixed(0)} KiB; writing the report folder (${report.results.length} models, JSON + Markdown + PNGs + HTML) ${times[2]!.toFixed(0)} ms median of 5 (load ${os.loadavg()[0]!.toFixed(1)})`);
}

/** Bytes the page at / transfers (HTML, JS, CSS, icon) — its weight — as the browser saw them. */
async function pageWeight(page: Page): Promise<string> {
  const entries = (await page.evaluate(`JSON.stringify(performance.getEntriesByType('resource').map((e) => [e.name, e.transferSize, e.encodedBodySize]).concat([[location.href, performance.getEntriesByType('navigation')[0].transferSize, performance.getEntriesByType('navigation')[0].encodedBodySize]]))`)) as string;
  const list = JSON.parse(entries) as Array<[string, number, number]>;
  const body = list.reduce((a, [, , b]) => a + b, 0);
  return `${list.length} files, ${(body / 1024).toFixed(1)} KiB`;
}

async function main(): Promise<void> {
  const out = path.resolve(ROOT, arg('--out', 'docs/screenshots'));
  await mkdir(out, { recursive: true });
  const work = await mkdtemp(path.join(os.tmpdir(), 'mlctl-shots-'));
  const env = { ...process.env, MLCTL_ARTIFACTS: path.join(work, 'artifacts'), MLCTL_CACHE: path.join(work, 'cache') };
  const data = path.join(work, 'shapes');
  const common = ['--weights', 'none', '--image-size', '32', '--batch-size', '16', '--seed', '7', '--quiet', '--backend', 'wasm'];
  try {
    await mlctl(['datasets', 'synth', '--out', data, '--classes', '4', '--per-class', '30', '--size', '64', '--quiet'], env);
    const ft = JSON.parse(await mlctl(['train', '--data', data, '--name', 'shapes', '--epochs', '6', '--patience', '2', '--fine-tune', '1', '--tensorboard', path.join(work, 'tb'), ...common, '--json'], env));
    // v2: the same model quantized to int8 (ONNX QDQ): the before/after comparison optimize users look at.
    await mlctl(['quantize', 'shapes@1', '--dtype', 'int8', '--data', data, '--calibration', '40', '--max-accuracy-drop', '1', '--seed', '7', '--quiet', '--backend', 'wasm'], env);
    const reportDir = path.join(work, 'report');
    await mlctl(['evaluate', 'shapes@1', 'shapes@2', '--data', data, '--split', 'val', '--report', reportDir, '--latency-runs', '20', '--worst', '8', '--quiet'], env);
    await measureReport(reportDir, path.join(work, 'report-again'));
    const browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', `--user-data-dir=${path.join(work, 'profile')}`],
    });
    try {
      await shoot(browser, pathToFileURL(path.join(reportDir, 'index.html')).href, path.join(out, 'report.png'), { height: 1100 });
      await shoot(browser, pathToFileURL(path.join(reportDir, 'index.html')).href, path.join(out, 'report-model.png'), {
        height: 1000,
        before: async (p) => void (await p.evaluate(`document.querySelector('#model-1-confusion').scrollIntoView()`)),
      });
      await shoot(browser, pathToFileURL(path.join(ft.package as string, 'history.html')).href, path.join(out, 'history.png'), { height: 820 });
      if (!process.argv.includes('--no-serve')) {
        const server = await serve([path.join(work, 'artifacts'), '--quiet'], env);
        try {
          await shoot(browser, `${server.url}/`, path.join(out, 'serve-page.png'), {
            height: 900,
            before: async (p) => {
              await p.waitForSelector('#app:not([hidden])');
              console.log(`serve page: ${await pageWeight(p)} before the first prediction`);
              await p.select('#model', 'shapes@1');
              const input = await p.waitForSelector('input[type=file]');
              await input!.uploadFile(path.join(data, 'circle', (await readdir(path.join(data, 'circle')))[0]!));
              await p.waitForSelector('#result .bar', { timeout: 30_000 });
            },
          });
        } finally {
          server.stop();
        }
      }
    } finally {
      await browser.close();
    }
    for (const f of ['report.png', 'report-model.png', 'history.png']) if ((await stat(path.join(out, f))).size > MAX_BYTES) throw new Error(`${f} too large`);
  } finally {
    if (!process.argv.includes('--keep')) await rm(work, { recursive: true, force: true });
    else console.log(`kept ${work}`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
