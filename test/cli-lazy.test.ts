// `mlctl --version` and every --help stay light: a real node process runs the CLI with a module.register() hook
// that records each module it loads, and none of the heavy runtime packages may be among them. A real command run
// through the same recorder shows they are caught when they do load.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './helpers/fixtures.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const HEAVY = ['@tensorflow/tfjs', '@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-wasm', 'onnxruntime-node', 'onnxruntime-common', 'sharp', 'fastify', '@fastify/multipart', '@grpc/grpc-js', '@grpc/proto-loader', 'protobufjs', 'h5wasm', 'prom-client'];
// The CLI from source (tsx), as bin/mlctl.js runs it from dist/: main(process.argv) with node-style argv.
const ENTRY = "const { main } = await import('./src/cli/main.ts'); process.exitCode = await main(['node', 'mlctl', ...process.argv.slice(1)]);";

let tmp: { dir: string; cleanup: () => Promise<void> };
let n = 0;

/** Run mlctl with the import recorder; returns the exit code, stdout and the node_modules packages loaded. */
function runRecorded(args: string[]): { status: number | null; stdout: string; stderr: string; packages: Set<string>; modules: string[] } {
  const log = path.join(tmp.dir, `imports-${n++}.log`);
  const res = spawnSync(process.execPath, ['--import', 'tsx', '--import', './test/helpers/record-imports.mjs', '--input-type=module', '-e', ENTRY, '--', ...args], {
    cwd: root,
    env: { ...process.env, MLCTL_IMPORT_LOG: log, NODE_OPTIONS: '' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  const modules = readFileSync(log, 'utf8').split('\n').filter(Boolean);
  const packages = new Set<string>();
  for (const m of modules) {
    const hit = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(decodeURIComponent(m));
    if (hit) packages.add(hit[1]!);
  }
  return { status: res.status, stdout: res.stdout, stderr: res.stderr, packages, modules };
}

beforeAll(async () => {
  tmp = await tempDir('mlctl-lazy-');
});

afterAll(async () => {
  await tmp?.cleanup();
});

describe('lazy CLI', () => {
  it.each([[['--version']], [['--help']], [['train', '--help']], [['serve', '--help']], [['evaluate', '--help']], [['datasets', 'synth', '--help']]])(
    'mlctl %j loads none of the heavy runtime packages',
    (args) => {
      const r = runRecorded(args);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.length).toBeGreaterThan(0);
      // The recorder saw the CLI itself load (so an empty log cannot pass) …
      expect(r.packages.has('commander')).toBe(true);
      expect(r.modules.some((m) => m.includes('/src/cli/commands/train.ts'))).toBe(true);
      // … and none of what commands need to run.
      expect([...r.packages].filter((p) => HEAVY.includes(p))).toEqual([]);
      expect(r.modules.filter((m) => m.includes('/src/cli/run/'))).toEqual([]);
    },
  );

  it('a command that runs loads its runner and what it needs (the recorder catches heavy packages)', () => {
    const out = path.join(tmp.dir, 'synth');
    const r = runRecorded(['datasets', 'synth', '--out', out, '--classes', '2', '--per-class', '1', '--size', '16', '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, files: 2 });
    expect(r.packages.has('sharp')).toBe(true);
    expect(r.modules.some((m) => m.includes('/src/cli/run/datasets.ts'))).toBe(true);
    // Only what this command needs: no TF.js, ONNX Runtime or server stack.
    expect([...r.packages].filter((p) => ['@tensorflow/tfjs', 'onnxruntime-node', 'fastify', '@grpc/grpc-js'].includes(p))).toEqual([]);
  });
});
