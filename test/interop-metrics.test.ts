// mlctl serve's /metrics as Prometheus's own linter sees it: `promtool check metrics` (Debian package prometheus) on
// the exposition of a real `mlctl serve` process after REST and gRPC traffic — every family, prom-client's Node.js
// defaults included. A control shows promtool rejecting prom-client's unmodified defaults.
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadedPackage } from '../src/artifacts/package.js';
import { servingOn } from './helpers/cli.js';
import { tempDir, tinyPackage } from './helpers/fixtures.js';
import { tools } from './helpers/tools.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const MAIN = path.join(here, '..', 'src', 'cli', 'main.ts');

let root: string;
let cleanup: () => Promise<void>;
let pkg: LoadedPackage;

function promtool(exposition: string): { status: number | null; output: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: exposition, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() };
}

beforeAll(async () => {
  ({ dir: root, cleanup } = await tempDir('mlctl-metrics-'));
  pkg = await tinyPackage(path.join(root, 'artifacts'), { name: 'metered', size: 32 });
});
afterAll(() => cleanup());

describe.skipIf(!tools.promtool)('Prometheus naming (promtool check metrics)', () => {
  it("control: promtool rejects prom-client's default Node.js gauges named *_total", async () => {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    const r = promtool(await registry.metrics());
    expect(r.status).not.toBe(0);
    expect(r.output).toMatch(/nodejs_active_handles_total non-counter metrics should not have "_total" suffix/);
  });

  it('a running mlctl serve passes after REST and gRPC traffic', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', `const {main} = await import(${JSON.stringify(MAIN)}); process.exitCode = await main(['node', 'mlctl', ...process.argv.slice(1)])`, 'serve', pkg.dir, '--port', '0', '--grpc-port', '0', '--backend', 'cpu'],
      { cwd: path.join(here, '..'), stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, MLCTL_CACHE: path.join(root, 'cache') } },
    );
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise((r) => child.on('exit', r));
    const listening = servingOn(child);
    try {
      // Ports bound where the server starts (0), read back from its start-up line: nothing to race for.
      const { url: base, grpcPort } = await listening;
      expect((await fetch(`${base}/v2/health/ready`)).status, stderr).toBe(200);
      const body = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 32, 32, 3], data: new Array(32 * 32 * 3).fill(0.5) }] });
      expect((await fetch(`${base}/v2/models/metered/infer`, { method: 'POST', body, headers: { 'content-type': 'application/json' } })).status, stderr).toBe(200);
      expect((await fetch(`${base}/v2/models/nope`)).status).toBe(404);
      const grpc = await import('@grpc/grpc-js');
      const { predictV2Service } = await import('../src/serve/grpc/proto.js');
      const V2 = predictV2Service();
      const client = new V2(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure());
      await new Promise<void>((resolve, reject) => (client.ServerReady as (r: object, cb: (e: Error | null) => void) => void).call(client, {}, (e) => (e ? reject(e) : resolve())));
      client.close();

      const exposition = await (await fetch(`${base}/metrics`)).text();
      // Every family mlctl defines is there, and the Node.js defaults that passed the lint are kept.
      for (const family of ['mlctl_requests_total', 'mlctl_request_duration_seconds', 'mlctl_inference_duration_seconds', 'mlctl_batch_size', 'mlctl_queue_depth', 'mlctl_models_loaded', 'mlctl_nodejs_active_handles', 'mlctl_process_cpu_seconds_total']) {
        expect(exposition).toContain(`# TYPE ${family} `);
      }
      expect(exposition).toMatch(/mlctl_requests_total\{protocol="grpc"/);
      const r = promtool(exposition);
      expect(r.output).toBe('');
      expect(r.status).toBe(0);
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });
});
