// `mlctl serve NAME:TAG --watch` as a real process: it serves the tagged version and, when `models tag` moves the
// tag (forward, then back as a rollback), loads the new target, switches to it and unloads the old one.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tagVersion } from '../src/registry/tags.js';
import { tempDir, tinyPackage } from './helpers/fixtures.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MAIN = path.join(repoRoot, 'src/cli/main.ts');
let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;

beforeAll(async () => {
  tmp = await tempDir('mlctl-registry-serve-');
  root = path.join(tmp.dir, 'artifacts');
  await tinyPackage(root, { name: 'tiny', seed: 1 });
  await tinyPackage(root, { name: 'tiny', seed: 2 });
  await tagVersion('tiny@1', 'production', { root });
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
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `const {main} = await import(${JSON.stringify(MAIN)}); process.exitCode = await main(['node', 'mlctl', ...process.argv.slice(1)])`, ...args], {
      cwd: repoRoot,
      env: { ...process.env, NO_COLOR: '1', MLCTL_ARTIFACTS: root, MLCTL_CACHE: path.join(tmp.dir, 'cache') },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      await until(async () => /"msg":"serving on /.test(stderr) || child.exitCode !== null, 'the server to listen');
      const url = /"msg":"serving on (http:\/\/[^"]+)"/.exec(stderr)?.[1];
      expect(url, stderr).toBeDefined();
      expect(await servedVersions(url!)).toEqual(['1']);
      await tagVersion('tiny@2', 'production', { root });
      await until(async () => JSON.stringify(await servedVersions(url!)) === '["2"]', 'the switch to v2');
      await tagVersion('tiny@1', 'production', { root });
      await until(async () => JSON.stringify(await servedVersions(url!)) === '["1"]', 'the rollback to v1');
      await until(async () => /tiny:production points at v1; unloaded v2/.test(stderr), "the unload to be logged");
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  }, 60_000);
});
