// Run mlctl in-process through main(argv), capturing stdout and stderr; with --json the one document is parsed.
import { vi } from 'vitest';
import { main } from '../../src/cli/main.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each command's JSON document has its own shape
  json: any;
}

export async function runCli(args: string[]): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((stdout += String(s)), true));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((stderr += String(s)), true));
  try {
    const code = await main(['node', 'mlctl', ...args]);
    return { code, stdout, stderr, json: args.includes('--json') ? JSON.parse(stdout) : undefined };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}
