// Model files made by a Python script (python3-torch/torchvision, python3-onnx), cached under
// node_modules/.cache/mlctl-fixtures/<name>-<script hash>/ so an export that takes a minute runs once per machine and
// again only when its script changes. Only in tests guarded by the tools guard (test/helpers/tools.ts).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PYTHON } from './tools.js';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const FIXTURE_CACHE = path.join(ROOT, 'node_modules', '.cache', 'mlctl-fixtures');
const SCRIPTS = path.join(ROOT, 'test', 'fixtures', 'python');

/**
 * The folder the script test/fixtures/python/<script> wrote its files into (it gets the folder as argv[1]). Made
 * in a temporary folder and renamed into place, so a failed or concurrent run never leaves half a fixture.
 */
export function pythonFixture(script: string, timeoutMs = 240_000): string {
  const file = path.join(SCRIPTS, script);
  const hash = createHash('sha256').update(readFileSync(file)).digest('hex').slice(0, 16);
  const dir = path.join(FIXTURE_CACHE, `${path.basename(script, '.py')}-${hash}`);
  if (existsSync(path.join(dir, '.done'))) return dir;
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const r = spawnSync(PYTHON, [file, tmp], { encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, OMP_NUM_THREADS: '1', PYTHONWARNINGS: 'ignore' } });
  if (r.status !== 0) {
    rmSync(tmp, { recursive: true, force: true });
    throw new Error(`${script} failed (${r.status ?? r.signal}): ${r.stderr.slice(-2000)}`);
  }
  writeFileSync(path.join(tmp, '.done'), new Date().toISOString());
  try {
    renameSync(tmp, dir);
  } catch {
    // Another process made it first: use theirs.
    rmSync(tmp, { recursive: true, force: true });
  }
  return dir;
}
