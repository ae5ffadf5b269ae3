// `mlctl serve` security options through the real CLI entry (commander table → serve command → security
// extension), in-process: each bad combination fails at start with exit 2 and says what to fix.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { main } from '../src/cli/main.js';
import { tempDir, tinyPackage } from './helpers/fixtures.js';

let tmp: { dir: string; cleanup: () => Promise<void> };

beforeAll(async () => {
  tmp = await tempDir('mlctl-sec-cli-');
  await tinyPackage(path.join(tmp.dir, 'models'), { name: 'tiny' });
});
afterAll(() => tmp?.cleanup());

/** Run `mlctl serve MODELS ...args` in this process; returns the exit code and what went to stderr. */
async function serveFails(args: string[], env: Record<string, string> = {}, target = path.join(tmp.dir, 'models')): Promise<{ code: number; err: string }> {
  const written: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  process.stderr.write = ((chunk: string | Uint8Array) => (written.push(String(chunk)), true)) as typeof process.stderr.write;
  try {
    const code = await main(['node', 'mlctl', 'serve', target, '--port', '0', '--backend', 'cpu', '--engine', 'tfjs', ...args]);
    return { code, err: written.join('') };
  } finally {
    process.stderr.write = write;
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

describe('mlctl serve security options (CLI)', () => {
  it('exits 2 for TLS files that cannot be read', async () => {
    const r = await serveFails(['--tls-cert', path.join(tmp.dir, 'missing.pem'), '--tls-key', path.join(tmp.dir, 'missing.key')]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/TLS certificate .*missing\.pem cannot be used: cannot read it \(ENOENT\)/);
  });

  it('checks security options before loading any model', async () => {
    // The model path does not exist: if models loaded first, this would be PACKAGE_NOT_FOUND (exit 1).
    const r = await serveFails(['--tls-cert', path.join(tmp.dir, 'missing.pem'), '--tls-key', path.join(tmp.dir, 'missing.key')], {}, path.join(tmp.dir, 'no-such-models'));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/TLS certificate/);
    expect(r.err).not.toMatch(/no model package/);
  });

  it('exits 2 for a malformed key in MLCTL_API_KEYS without echoing it', async () => {
    const r = await serveFails([], { MLCTL_API_KEYS: 'ci:tooshort' });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/API key configuration --api-key\/MLCTL_API_KEYS entry 1 is invalid: the key is too short/);
    expect(r.err).not.toContain('tooshort');
  });

  it('exits 2 for --watch on a single package version and for a bad --rate-limit', async () => {
    const pinned = await serveFails(['--watch'], {}, path.join(tmp.dir, 'models', 'tiny', '1'));
    expect(pinned.code).toBe(2);
    expect(pinned.err).toMatch(/is a single package version: serve its model directory .* to use --watch/);
    const rate = await serveFails(['--rate-limit', '0/s']);
    expect(rate.code).toBe(2);
    // serve's stderr is JSON lines by default (--log-format), the error included: read the message, not the escaped line.
    const messages = rate.err.trim().split('\n').map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(messages.join('\n')).toMatch(/--rate-limit "0\/s" is not valid/);
  });
});
