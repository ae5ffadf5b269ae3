// CLI start-up benchmark: median wall time of `node bin/mlctl.js --version` (and --help, train --help) beside a bare
// `node -e 0`, runs interleaved so machine load hits both alike; target: --version at most 0.15 s above bare node.
// Usage: npm run bench -- cli [--runs 21]   (builds dist/ first when src/ is newer: bin/mlctl.js runs dist/)
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg, writeBenchResult } from './_util.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TARGET_S = 0.15;

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

function ensureBuilt(): void {
  const built = path.join(root, 'dist', 'cli', 'main.js');
  if (existsSync(built) && statSync(built).mtimeMs >= newestMtime(path.join(root, 'src'))) return;
  console.log('dist/ is older than src/: building (tsc -p tsconfig.build.json) …');
  const r = spawnSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('build failed');
}

/** CPU seconds used by reaped children so far (Linux /proc: cutime + cstime), or undefined elsewhere. */
function childCpuSeconds(): number | undefined {
  try {
    const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[13]) + Number(fields[14])) / 100; // clock ticks (USER_HZ = 100)
  } catch {
    return undefined;
  }
}

interface Case {
  name: string;
  args: string[];
  wall: number[];
  cpu: number[];
}

function timeOnce(c: Case): void {
  const cpu0 = childCpuSeconds();
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, c.args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu1 = childCpuSeconds();
  if (r.status !== 0) throw new Error(`${c.name} exited ${r.status}: ${r.stderr.toString()}`);
  c.wall.push(wall);
  if (cpu0 !== undefined && cpu1 !== undefined) c.cpu.push(cpu1 - cpu0);
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  const i = (s.length - 1) * q;
  return s[Math.floor(i)]! + (s[Math.ceil(i)]! - s[Math.floor(i)]!) * (i - Math.floor(i));
};
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

export async function main(args: string[]): Promise<void> {
  const runs = Math.max(15, Number(arg(args, '--runs', '21')));
  ensureBuilt();
  const bin = path.join(root, 'bin', 'mlctl.js');
  const cases: Case[] = [
    { name: 'node -e 0', args: ['-e', '0'], wall: [], cpu: [] },
    { name: 'mlctl --version', args: [bin, '--version'], wall: [], cpu: [] },
    { name: 'mlctl --help', args: [bin, '--help'], wall: [], cpu: [] },
    { name: 'mlctl train --help', args: [bin, 'train', '--help'], wall: [], cpu: [] },
  ];
  for (const c of cases) timeOnce(c); // warm the file cache; not counted
  for (const c of cases) c.wall.length = c.cpu.length = 0;
  const load = os.loadavg();
  for (let i = 0; i < runs; i++) {
    // Interleaved, rotating the order each round so no case always runs first (or last) in a round.
    for (let k = 0; k < cases.length; k++) timeOnce(cases[(i + k) % cases.length]!);
  }
  const base = quantile(cases[0]!.wall, 0.5);
  console.log(`\n${runs} interleaved runs each, ${os.availableParallelism()} cores, load average ${load.map((l) => l.toFixed(2)).join(' ')} (at start) / ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} (at end)`);
  console.log(['case'.padEnd(22), 'median s'.padStart(9), 'p90 s'.padStart(8), 'CPU s'.padStart(7), 'vs node -e 0'.padStart(13)].join(' '));
  const rows = cases.map((c) => {
    const median = quantile(c.wall, 0.5);
    const row = { name: c.name, medianS: median, p90S: quantile(c.wall, 0.9), cpuS: c.cpu.length ? mean(c.cpu) : undefined, aboveNodeS: median - base };
    console.log([c.name.padEnd(22), median.toFixed(3).padStart(9), row.p90S.toFixed(3).padStart(8), (row.cpuS?.toFixed(3) ?? 'n/a').padStart(7), (c === cases[0] ? '' : `+${row.aboveNodeS.toFixed(3)}`).padStart(13)].join(' '));
    return row;
  });
  const version = rows[1]!;
  const verdict = version.aboveNodeS <= TARGET_S ? 'meets' : 'MISSES';
  console.log(`\nmlctl --version: ${version.medianS.toFixed(3)} s vs node -e 0 ${base.toFixed(3)} s → +${version.aboveNodeS.toFixed(3)} s above; target ≤ +${TARGET_S.toFixed(3)} s: ${verdict} (${(version.aboveNodeS / TARGET_S).toFixed(2)} of the budget)`);
  await writeBenchResult('cli', { runs, loadAverage: load, targetAboveNodeS: TARGET_S, rows, meetsTarget: verdict === 'meets' });
}
