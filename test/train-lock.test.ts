// Two real `mlctl train` processes with the same --name: the second fails with RUN_LOCKED naming the first one's pid;
// once the first is killed its lock is stale, and --resume continues its checkpoint naming the run it resumes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { spawnCli } from './helpers/cli.js';
import { mlctlHome, synthDataset, type MlctlHome } from './helpers/fixtures.js';

let tmp: MlctlHome;
let data: string;

const COMMON = ['--data', '', '--name', 'locked', '--weights', 'none', '--image-size', '32', '--batch-size', '8', '--engine', 'tfjs', '--backend', 'cpu', '--seed', '5', '--patience', '1000'];
const args = (...extra: string[]) => ['train', ...COMMON.map((a) => (a === '' ? data : a)), ...extra];

beforeAll(async () => {
  tmp = await mlctlHome('mlctl-train-lock-');
  data = path.join(tmp.dir, 'data');
  await synthDataset(data, { classes: 2, perClass: 8, size: 32, seed: 4 });
});
afterAll(() => tmp?.cleanup());

describe('run folder lock', () => {
  it('refuses a second run with the same --name (RUN_LOCKED, with the pid), and --resume after a kill names the run', async () => {
    const first = spawnCli(args('--epochs', '1000'));
    try {
      const checkpoint = path.join(tmp.artifacts, '.runs', 'locked', 'checkpoint', 'state.json');
      const deadline = Date.now() + 120_000;
      while (!existsSync(checkpoint) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(existsSync(checkpoint)).toBe(true);

      const second = spawnCli(args('--epochs', '2', '--json'));
      expect(await second.exited).toBe(1);
      const doc = JSON.parse(second.out()) as { ok: boolean; error: { code: string; message: string } };
      expect(doc.error.code).toBe('RUN_LOCKED');
      expect(doc.error.message).toContain(`pid ${first.child.pid}`);
      expect(doc.error.message).toMatch(/run locked is in use by another mlctl process/);

      first.child.kill('SIGKILL');
      await first.exited;
      const resumed = spawnCli(args('--epochs', '1', '--resume'));
      expect(await resumed.exited).toBe(0);
      expect(resumed.err()).toMatch(new RegExp(`resuming "locked" \\(run \\d{8}T\\d{6}-${first.child.pid}, started [^)]+ by pid ${first.child.pid}\\)`));
      expect(existsSync(path.join(tmp.artifacts, '.runs', 'locked', 'run.lock'))).toBe(false);
      expect(existsSync(path.join(tmp.artifacts, '.runs', 'locked', 'owner.json'))).toBe(false);
    } finally {
      first.child.kill('SIGKILL');
    }
  });
});
