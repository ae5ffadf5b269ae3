// `mlctl serve NAME:TAG --watch` as a real process: it serves the tagged version and, when `models tag` moves the
// tag (forward, then back as a rollback), loads the new target, switches to it and unloads the old one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tagVersion } from '../src/registry/tags.js';
import { spawnCli } from './helpers/cli.js';
import { mlctlHome, tinyPackage, type MlctlHome } from './helpers/fixtures.js';

let tmp: MlctlHome;
let root: string;

beforeAll(async () => {
  tmp = await mlctlHome('mlctl-registry-serve-');
  root = tmp.artifacts;
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
