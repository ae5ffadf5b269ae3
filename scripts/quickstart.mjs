#!/usr/bin/env node
// The README's first command: generate the sample dataset, train on it, evaluate the model, then serve it,
// send one image to POST /predict (the seed's contract) and shut the server down gracefully.
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'bin', 'mlctl.js');
const data = path.join(root, 'artifacts', 'sample-data');
const env = { ...process.env, MLCTL_ARTIFACTS: path.join(root, 'artifacts') };

function step(title, args) {
  console.error(`\n$ mlctl ${args.join(' ')}`);
  const res = spawnSync(process.execPath, [bin, ...args], { stdio: 'inherit', env, cwd: root });
  if (res.status !== 0) {
    console.error(`quickstart: "${title}" failed (exit ${res.status})`);
    process.exit(res.status ?? 1);
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function waitReady(base, child, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited early (code ${child.exitCode})`);
    try {
      const res = await fetch(`${base}/v2/health/ready`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error('server did not become ready in time');
}

step('generate the sample dataset', ['datasets', 'synth', '--out', data, '--per-class', '40', '--size', '64']);
step('train', ['train', '--data', data, '--name', 'sample', '--weights', 'none', '--image-size', '64', '--epochs', '10', '--seed', '42']);
step('evaluate', ['evaluate', 'sample', '--data', data, '--split', 'val', '--report', path.join(root, 'artifacts', 'sample-report')]);

const port = await freePort();
const base = `http://127.0.0.1:${port}`;
console.error(`\n$ mlctl serve sample --port ${port}`);
const server = spawn(process.execPath, [bin, 'serve', 'sample', '--port', String(port), '--host', '127.0.0.1'], { stdio: ['ignore', 'inherit', 'inherit'], env, cwd: root });
try {
  await waitReady(base, server);
  const cls = readdirSync(data).sort()[0];
  const file = path.join(data, cls, readdirSync(path.join(data, cls)).sort()[0]);
  const form = new FormData();
  form.append('image', new Blob([readFileSync(file)], { type: 'image/jpeg' }), path.basename(file));
  console.error(`\n$ curl -F image=@${path.relative(root, file)} ${base}/predict`);
  const res = await fetch(`${base}/predict`, { method: 'POST', body: form });
  const body = await res.json();
  console.log(JSON.stringify({ status: res.status, file: path.relative(root, file), trueClass: cls, top: body.labels?.[0]?.[0], model: body.model, version: body.version }, null, 2));
  if (!res.ok) process.exitCode = 1;
} finally {
  server.kill('SIGTERM');
  const code = await new Promise((r) => server.once('exit', (c) => r(c)));
  console.error(`server stopped (exit ${code})`);
}
