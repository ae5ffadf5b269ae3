// Shared benchmark helpers: argument lookup and writing results under artifacts/bench/.
import path from 'node:path';
import { writeJsonAtomic } from '../src/artifacts/atomic.js';

export function arg(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1]! : fallback;
}

export async function writeBenchResult(name: string, result: Record<string, unknown>): Promise<string> {
  const file = path.resolve('artifacts', 'bench', `${name}.json`);
  await writeJsonAtomic(file, { name, at: new Date().toISOString(), node: process.version, ...result });
  console.log(`results written to ${path.relative(process.cwd(), file)}`);
  return file;
}
