// `mlctl serve` as a real process with the security options: keys from MLCTL_API_KEYS, gRPC on its own port,
// an audit log, then SIGTERM → exit 0; and bad TLS flags fail at start with a usage error (exit 2).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { main } from '../src/cli/main.js';
import { predictV2Service } from '../src/serve/grpc/proto.js';
import { tempDir, tinyPackage } from './helpers/fixtures.js';
import { pngOf } from './serve-security-helpers.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MAIN = path.join(repoRoot, 'src/cli/main.ts');
const KEY = 'cli-test-key-0123456789abc';

function runCli(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `const {main} = await import(${JSON.stringify(MAIN)}); process.exitCode = await main(['node', 'mlctl', ...process.argv.slice(1)])`, ...args], {
    cwd: repoRoot,
    env: { ...process.env, NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const listening = new Promise<{ url: string; grpc: string }>((resolve, reject) => {
    const check = () => {
      const m = /"url":"(http:\/\/[^"]+)".*"grpc":"([^"]+)"/.exec(stderr);
      if (m) resolve({ url: m[1]!, grpc: m[2]! });
    };
    child.stderr.on('data', check);
    void exited.then(() => reject(new Error(`exited before listening:\n${stderr}`)));
  });
  listening.catch(() => {}); // awaited by the test that needs it; a process that exits early is not unhandled
  return { child, exited, listening, out: () => stdout, err: () => stderr };
}

let tmp: { dir: string; cleanup: () => Promise<void> };

beforeAll(async () => {
  tmp = await tempDir('mlctl-sec-cli-');
  await tinyPackage(path.join(tmp.dir, 'models'), { name: 'tiny' });
});
afterAll(() => tmp?.cleanup());

describe('mlctl serve with security options (process)', () => {
  it('requires the key from MLCTL_API_KEYS on REST and gRPC, audits, and exits 0 on SIGTERM', async () => {
    const audit = path.join(tmp.dir, 'audit.jsonl');
    const cli = runCli(['serve', path.join(tmp.dir, 'models'), '--port', '0', '--grpc-port', '0', '--backend', 'cpu', '--engine', 'tfjs', '--audit-log', audit], { MLCTL_API_KEYS: `ci:${KEY}` });
    try {
      const { url, grpc: grpcAddr } = await cli.listening;
      const png = await pngOf(10, 200, 10);
      const post = (headers: Record<string, string>) => fetch(`${url}/predict`, { method: 'POST', body: png, headers: { 'content-type': 'image/png', ...headers } });
      expect((await post({})).status).toBe(401);
      expect((await post({ authorization: `Bearer ${KEY}` })).status).toBe(200);
      const Client = predictV2Service();
      const client = new Client(grpcAddr, grpc.credentials.createInsecure());
      const md = new grpc.Metadata();
      md.set('x-api-key', KEY);
      const meta = await new Promise<Record<string, any>>((resolve, reject) => (client as any).ModelMetadata({ name: 'tiny' }, md, (e: Error | null, r: Record<string, any>) => (e ? reject(e) : resolve(r))));
      client.close();
      expect(meta.name).toBe('tiny');
      cli.child.kill('SIGTERM');
      expect(await cli.exited).toBe(0);
      expect(cli.err()).toMatch(/API keys required .*\(1 key\(s\): ci\)/);
      expect(cli.err()).not.toContain(KEY);
      const lines = (await fs.readFile(audit, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
      // The refused (401) call never reached the model: one load line, one prediction line.
      expect(lines.map((l) => l.event)).toEqual(['model-load', 'predict']);
      expect(lines[1]).toMatchObject({ keyId: 'ci', model: 'tiny' });
    } finally {
      cli.child.kill('SIGKILL');
    }
  });

  it('exits 2 with a clear message for TLS flags that cannot work', async () => {
    // In-process: the failure happens before anything listens, and another process start would cost seconds.
    const written: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string | Uint8Array) => (written.push(String(chunk)), true)) as typeof process.stderr.write;
    let code: number;
    try {
      code = await main(['node', 'mlctl', 'serve', path.join(tmp.dir, 'models'), '--port', '0', '--backend', 'cpu', '--engine', 'tfjs', '--tls-cert', path.join(tmp.dir, 'missing.pem'), '--tls-key', path.join(tmp.dir, 'missing.key')]);
    } finally {
      process.stderr.write = write;
    }
    expect(code).toBe(2);
    expect(written.join('')).toMatch(/TLS certificate .*missing\.pem cannot be used: cannot read it \(ENOENT\)/);
  });
});
