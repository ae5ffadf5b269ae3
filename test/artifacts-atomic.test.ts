// Atomic package writes killed mid-way: a real writer process is SIGKILLed inside writeDirAtomic; its temporary
// folder is listed as stale (with the dead pid) and removed by the next write in the same folder, live ones are kept.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { listStaleTemps, writeDirAtomic } from '../src/artifacts/atomic.js';
import { tempDir } from './helpers/fixtures.js';

const ATOMIC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/artifacts/atomic.ts');
let tmp: { dir: string; cleanup: () => Promise<void> };

beforeAll(async () => {
  tmp = await tempDir('mlctl-atomic-');
});
afterAll(() => tmp?.cleanup());

/** Start writing `target` in another process and SIGKILL it once its temporary folder holds a file. */
async function killedWriter(target: string): Promise<number> {
  const code = `const { writeDirAtomic } = await import(${JSON.stringify(ATOMIC)});
await writeDirAtomic(${JSON.stringify(target)}, async (dir) => {
  const { writeFile } = await import('node:fs/promises');
  await writeFile(dir + '/weights.bin', Buffer.alloc(4096));
  process.stdout.write('filling\\n');
  await new Promise(() => {});
});`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => child.stdout.on('data', (d) => String(d).includes('filling') && resolve()));
  const exited = new Promise((r) => child.on('exit', r));
  child.kill('SIGKILL');
  await exited;
  return child.pid!;
}

describe('stale temporary folders', () => {
  it('lists a SIGKILLed writer\'s folder with its pid and removes it on the next write; a live writer\'s stays', async () => {
    const root = path.join(tmp.dir, 'models', 'tiny');
    const pid = await killedWriter(path.join(root, '1'));
    const left = (await fs.readdir(root)).filter((n) => n.startsWith('.1.tmp-'));
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(new RegExp(`^\\.1\\.tmp-${pid}-[0-9a-f]{8}$`));
    const stale = await listStaleTemps(root);
    expect(stale).toMatchObject([{ pid, target: path.join(root, '1') }]);
    // A temporary folder of a process that is still running is not stale.
    await fs.mkdir(path.join(root, `.2.tmp-${process.pid}-0badc0de`));
    expect((await listStaleTemps(root)).map((t) => t.pid)).toEqual([pid]);
    await writeDirAtomic(path.join(root, '3'), async (dir) => fs.writeFile(path.join(dir, 'x'), 'y'));
    expect((await fs.readdir(root)).sort()).toEqual([`.2.tmp-${process.pid}-0badc0de`, '3']);
    expect(await listStaleTemps(root)).toEqual([]);
  });
});
