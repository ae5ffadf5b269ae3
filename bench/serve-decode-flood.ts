// A flood of huge images against `mlctl serve` (issue #28 item 6): 16 concurrent 8192x8192 PNGs — 16-bit RGBA
// (refused from the header: it decodes past the pixel limit counted at 8-bit RGBA) and 8-bit RGBA (accepted, large
// decodes take turns) — with one ordinary 1024x768 JPEG sent behind them: its latency next to its latency alone,
// and the server's RSS. The server is a real `mlctl serve` process (ONNX engine), so RSS is its own.
// `npm run bench -- serve-decode-flood [--flood 16] [--side 8192]`
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { tempDir, tinyPackage } from '../test/helpers/fixtures.js';
import { arg, writeBenchResult } from './_util.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ENTRY = `const { main } = await import(${JSON.stringify(path.join(repoRoot, 'src/cli/main.ts'))}); process.exitCode = await main(['node', 'mlctl', ...process.argv.slice(1)]);`;

/** Target: an ordinary request behind the flood takes at most this many times its latency alone (plus 100 ms). */
const TARGET_RATIO = 5;

async function startServe(pkgDir: string): Promise<{ url: string; pid: number; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', ENTRY, '--', 'serve', pkgDir, '--port', '0', '--engine', 'onnx', '--max-batch', '8'], {
    cwd: repoRoot,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (d) => {
      stderr += d;
      const m = /"msg":"serving on (http:\/\/[^"]+)"/.exec(stderr);
      if (m) resolve(m[1]!);
    });
    child.on('exit', () => reject(new Error(`mlctl serve exited:\n${stderr}`)));
  });
  return {
    url,
    pid: child.pid!,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

const rssMiB = async (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(await fs.readFile(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

export async function main(args: string[]): Promise<void> {
  const flood = Number(arg(args, '--flood', '16'));
  const side = Number(arg(args, '--side', '8192'));
  const tmp = await tempDir('mlctl-bench-flood-');
  try {
    const pkg = await tinyPackage(path.join(tmp.dir, 'models'), { name: 'tiny', size: 224 });
    const solid = (channels: 3 | 4) => sharp({ create: { width: side, height: side, channels, background: { r: 10, g: 20, b: 30, alpha: 1 } } });
    const images = {
      rgba16: await solid(4).toColourspace('rgb16').png({ compressionLevel: 9 }).toBuffer(),
      rgba8: await solid(4).png({ compressionLevel: 9 }).toBuffer(),
      normal: await sharp({ create: { width: 1024, height: 768, channels: 3, background: { r: 0, g: 0, b: 0 }, noise: { type: 'gaussian', mean: 120, sigma: 40 } } }).jpeg({ quality: 85 }).toBuffer(),
    };
    console.log(`images: ${side}x${side} 16-bit RGBA PNG ${images.rgba16.length} B, 8-bit RGBA PNG ${images.rgba8.length} B, 1024x768 JPEG ${images.normal.length} B`);
    const srv = await startServe(pkg.dir);
    try {
      const post = async (body: Buffer) => {
        const t = performance.now();
        const r = await fetch(`${srv.url}/predict`, { method: 'POST', headers: { 'content-type': body[0] === 0xff ? 'image/jpeg' : 'image/png' }, body });
        await r.arrayBuffer();
        return { status: r.status, ms: performance.now() - t };
      };
      for (let i = 0; i < 5; i++) await post(images.normal);
      const alone: number[] = [];
      for (let i = 0; i < 11; i++) alone.push((await post(images.normal)).ms);
      const aloneMs = alone.sort((a, b) => a - b)[5]!;
      const rssIdle = await rssMiB(srv.pid);
      console.log(`ordinary request alone: median ${aloneMs.toFixed(1)} ms; server RSS ${rssIdle.toFixed(0)} MiB`);
      const rows: Array<Record<string, unknown>> = [];
      for (const name of ['rgba16', 'rgba8'] as const) {
        let peak = rssIdle;
        const timer = setInterval(() => void rssMiB(srv.pid).then((r) => (peak = Math.max(peak, r)), () => {}), 25);
        const t0 = performance.now();
        const running = Array.from({ length: flood }, () => post(images[name]));
        await new Promise((r) => setTimeout(r, 300));
        const behind = await post(images.normal);
        const done = await Promise.all(running);
        clearInterval(timer);
        const statuses = done.reduce<Record<string, number>>((a, r) => ((a[r.status] = (a[r.status] ?? 0) + 1), a), {});
        const ok = behind.status === 200 && behind.ms <= TARGET_RATIO * aloneMs + 100;
        rows.push({ flood: name, behindMs: Math.round(behind.ms), aloneMs: Math.round(aloneMs), statuses, floodSeconds: Number(((performance.now() - t0) / 1000).toFixed(1)), peakRssMiB: Math.round(peak), rssGrowthMiB: Math.round(peak - rssIdle), ok });
        console.log(
          `${flood} x ${side}x${side} ${name === 'rgba16' ? '16-bit' : '8-bit'} RGBA PNG: ordinary request behind them ${behind.ms.toFixed(0)} ms ` +
            `(alone ${aloneMs.toFixed(0)} ms; target <= ${TARGET_RATIO}x + 100 ms: ${ok ? 'met' : 'MISSED'}); flood ${JSON.stringify(statuses)} in ${((performance.now() - t0) / 1000).toFixed(1)} s; ` +
            `server RSS peak ${peak.toFixed(0)} MiB (+${(peak - rssIdle).toFixed(0)})`,
        );
      }
      console.log('(figures measured on a shared machine are under load: compare the rows with each other, not across runs)');
      await writeBenchResult('serve-decode-flood', { flood, side, aloneMs, rssIdleMiB: Math.round(rssIdle), rows });
    } finally {
      await srv.stop();
    }
  } finally {
    await tmp.cleanup();
  }
}
