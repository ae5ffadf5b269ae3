// The registry audit log: package-changing commands append chained lines, `models audit --verify` catches edited,
// deleted, inserted and cut-off lines and packages changed behind its back, and two processes appending at once
// neither interleave nor break the chain.
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendRegistryAudit, GENESIS, registryAuditFile, verifyRegistryAudit, type RegistryAuditRecord } from '../src/artifacts/audit-log.js';
import { sha256 } from '../src/artifacts/hash.js';
import { generateModelKey } from '../src/artifacts/encryption.js';
import { generateSigningKeyPair } from '../src/artifacts/signing.js';
import { tempDir, tinyPackage } from './helpers/fixtures.js';
import { runCli } from './helpers/cli.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;
let log: string;

const lines = async (file = log) => (await fs.readFile(file, 'utf8')).split('\n').filter(Boolean);

beforeAll(async () => {
  tmp = await tempDir('mlctl-audit-');
  root = path.join(tmp.dir, 'artifacts');
  log = registryAuditFile(root);
});
afterAll(() => tmp?.cleanup());

describe('registry audit log', () => {
  it('train-like saves, sign, encrypt, export and decrypt each append one chained line', async () => {
    const pkg = await tinyPackage(root, { name: 'audited', size: 16 });
    await generateSigningKeyPair(path.join(tmp.dir, 'keys'));
    const key = (await generateModelKey(path.join(tmp.dir, 'keys', 'm.key'))).file;
    const env = { MLCTL_ARTIFACTS: root };
    expect((await runCli(['sign', 'audited@1', '--key', path.join(tmp.dir, 'keys', 'mlctl.key.pem')], { env })).code).toBe(0);
    expect((await runCli(['encrypt', 'audited@1', '--key-file', key], { env })).code).toBe(0);
    expect((await runCli(['export', 'audited@1', '--format', 'tfjs', '--out', path.join(tmp.dir, 'web'), '--backend', 'cpu'], { env })).code).toBe(0);
    expect((await runCli(['decrypt', 'audited@2', '--key-file', key], { env })).code).toBe(0);
    const recs = (await lines()).map((l) => JSON.parse(l) as RegistryAuditRecord);
    expect(recs.map((r) => r.command)).toEqual(['save', 'sign', 'encrypt', 'export', 'decrypt']);
    expect(recs.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(recs[0]!.prev).toBe(GENESIS);
    const raw = await lines();
    for (let i = 1; i < raw.length; i++) expect(recs[i]!.prev).toBe(sha256(raw[i - 1]!));
    expect(recs[0]).toMatchObject({ package: { name: 'audited', version: 1, manifestSha256: pkg.manifestSha256 }, user: expect.any(String), host: expect.any(String) });
    expect(recs[1]).toMatchObject({ command: 'sign', package: { version: 1 }, details: { keyId: expect.stringMatching(/^sha256:/) } });
    expect(recs[2]).toMatchObject({ command: 'encrypt', package: { version: 2 }, before: { version: 1, manifestSha256: pkg.manifestSha256 }, details: { keyId: expect.stringMatching(/^aes256:/) } });
    expect(recs[3]).toMatchObject({ command: 'export', before: { version: 1 }, details: { format: 'tfjs', out: path.join(tmp.dir, 'web'), signer: expect.stringMatching(/^sha256:/) } });
    expect(recs[4]).toMatchObject({ command: 'decrypt', package: { version: 3 }, before: { version: 2 } });
    const ok = await runCli(['models', 'audit', '--verify', '--json'], { env });
    expect(ok.code).toBe(0);
    expect(ok.json).toMatchObject({ verified: true, records: 5, head: `5:${sha256(raw[4]!)}`, packages: [] });
    const shown = await runCli(['models', 'audit', '--limit', '2'], { env });
    expect(shown.stdout).toMatch(/export[\s\S]*decrypt/);
    expect(shown.stdout).not.toMatch(/encrypt /);
  });

  it('--verify names the line that was edited, inserted or deleted, and a cut-off end against --head', async () => {
    const original = await fs.readFile(log, 'utf8');
    const raw = await lines();
    const head = `5:${sha256(raw[4]!)}`;
    const check = async (text: string, extra: string[] = []) => {
      await fs.writeFile(log, text);
      const r = await runCli(['models', 'audit', '--verify', '--root', root, '--json', ...extra]);
      await fs.writeFile(log, original);
      return r;
    };
    const edited = await check(original.replace('"command":"encrypt"', '"command":"train"'));
    expect(edited.code).toBe(1);
    expect(edited.json.problems).toEqual([{ line: 4, reason: expect.stringMatching(/prev is .* but the line before hashes to .*edited, inserted or deleted/) }]);
    const deleted = await check(raw.filter((_, i) => i !== 1).join('\n') + '\n');
    expect(deleted.json.problems.map((p: { line: number }) => p.line)).toEqual([2, 2]);
    expect(deleted.json.problems[1].reason).toMatch(/seq 3 follows seq 1/);
    const inserted = await check([raw[0], raw[0], ...raw.slice(1)].join('\n') + '\n');
    expect(inserted.json.verified).toBe(false);
    const torn = await check(original.slice(0, -20));
    expect(torn.json.problems.some((p: { reason: string }) => /no newline/.test(p.reason))).toBe(true);
    // Cutting the last line keeps the rest of the chain intact: the model's registry.json anchor (seq 5) shows it,
    // and so does a head recorded elsewhere.
    const cut = raw.slice(0, 4).join('\n') + '\n';
    expect((await check(cut)).json.problems).toEqual([{ line: 0, reason: expect.stringMatching(/audited\/registry\.json anchors line seq 5, which the log does not have/) }]);
    const pinned = await check(cut, ['--head', head]);
    expect(pinned.code).toBe(1);
    expect(pinned.json.problems.some((p: { reason: string }) => /line seq 5 \(the pinned head\) is gone/.test(p.reason))).toBe(true);
    expect((await check(original, ['--head', head])).json.verified).toBe(true);
  });

  it('--verify fails a log deleted, emptied or rewritten with its chain recomputed, and says what it cannot see (#28)', async () => {
    const original = await fs.readFile(log, 'utf8');
    const verify = () => runCli(['models', 'audit', '--verify', '--root', root, '--json']);
    const text = () => runCli(['models', 'audit', '--verify', '--root', root]);
    try {
      await fs.rm(log);
      const deleted = await verify();
      expect(deleted.code).toBe(1);
      expect(deleted.json.error.code).toBe('REGISTRY_AUDIT_BROKEN');
      expect(deleted.json.problems[0].reason).toMatch(/the log does not exist, but 1 model registry file\(s\) anchor lines up to seq 5 \(audited\): it was deleted/);

      await fs.writeFile(log, '');
      const emptied = await verify();
      expect(emptied.code).toBe(1);
      expect(emptied.json.problems[0].reason).toMatch(/anchors line seq 5, which the log does not have \(it is empty\)/);

      // Rewritten: the encrypt line becomes a train line, and every prev after it is recomputed — a valid chain.
      const recs = original.trim().split('\n').map((l) => JSON.parse(l) as RegistryAuditRecord);
      recs[2]!.command = 'train';
      const out: string[] = [];
      for (const r of recs) out.push(JSON.stringify({ ...r, prev: out.length ? sha256(out[out.length - 1]!) : GENESIS }));
      await fs.writeFile(log, out.join('\n') + '\n');
      const rewritten = await verify();
      expect(rewritten.code).toBe(1);
      expect(rewritten.json.problems).toEqual([{ line: 0, reason: expect.stringMatching(/audited\/registry\.json anchors line seq 5 as .* but it now hashes to .*rewritten \(hashes recomputed\)/) }]);

      await fs.writeFile(log, original);
      const ok = await text();
      expect(ok.code).toBe(0);
      expect(ok.stdout).toMatch(/hash chain intact, anchored by the registry\.json of 1 model\(s\) up to seq 5/);
      expect(ok.stdout).toMatch(/note: not detected without --head: the log rewritten together with every model's registry\.json/);

      // Without any anchor (the registry file gone too) the same rewrite passes, and the output says so plainly.
      const registry = path.join(root, 'audited', 'registry.json');
      const saved = await fs.readFile(registry, 'utf8');
      await fs.rm(registry);
      try {
        await fs.writeFile(log, out.join('\n') + '\n');
        const blind = await text();
        expect(blind.code).toBe(0);
        expect(blind.stdout).toMatch(/hash chain intact, NOT anchored/);
        expect(blind.stdout).toMatch(/note: without an anchor, a deleted, emptied or cut log, or one rewritten with its hashes recomputed, passes as well: pin the head with --head/);
      } finally {
        await fs.writeFile(registry, saved);
      }
    } finally {
      await fs.writeFile(log, original);
    }
    expect((await verify()).json.verified).toBe(true);
  });

  it('--verify reports a package whose mlctl.json changed after it was logged', async () => {
    const manifest = path.join(root, 'audited', '1', 'mlctl.json');
    const original = await fs.readFile(manifest, 'utf8');
    await fs.writeFile(manifest, original.replace('"test-tiny-cnn"', '"swapped"'));
    try {
      const r = await runCli(['models', 'audit', '--verify', '--root', root]);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/audited@1: mlctl.json has sha256 .* the log recorded/);
    } finally {
      await fs.writeFile(manifest, original);
    }
  });

  it('two processes appending at once: whole lines, one unbroken chain', async () => {
    const dir = path.join(tmp.dir, 'concurrent');
    const N = 60;
    const script = path.join(tmp.dir, 'append.mts');
    await fs.writeFile(
      script,
      `import { appendRegistryAudit } from ${JSON.stringify(path.join(REPO, 'src/artifacts/audit-log.ts'))};\n` +
        `const [who, start] = [process.argv[2], Number(process.argv[3])];\n` +
        // Both processes begin at the same moment, so their appends really overlap.
        `await new Promise((r) => setTimeout(r, Math.max(0, start - Date.now())));\n` +
        // Like separate commands, each append comes after a little work of its own.
        `for (let i = 0; i < ${N}; i++) {\n` +
        `  await appendRegistryAudit(${JSON.stringify(dir)}, { command: 'tag', details: { who, i, pad: 'x'.repeat(3000) } });\n` +
        `  await new Promise((r) => setTimeout(r, Math.random() * 4));\n` +
        `}\n`,
    );
    const start = Date.now() + 3000;
    const run = (who: string) =>
      new Promise<number>((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', script, who, String(start)], { cwd: REPO, stdio: ['ignore', 'ignore', 'inherit'] });
        child.on('error', reject);
        child.on('exit', (code) => resolve(code ?? -1));
      });
    expect(await Promise.all([run('a'), run('b')])).toEqual([0, 0]);
    const v = await verifyRegistryAudit(dir);
    expect(v.problems).toEqual([]);
    expect(v.records.map((r) => r.seq)).toEqual(Array.from({ length: 2 * N }, (_, i) => i + 1));
    for (const who of ['a', 'b']) expect(v.records.filter((r) => r.details?.who === who).map((r) => r.details?.i)).toEqual(Array.from({ length: N }, (_, i) => i));
    // They did overlap: the two writers' lines alternate somewhere rather than one finishing before the other began.
    const order = v.records.map((r) => r.details?.who).join('');
    expect(order).toMatch(/ab|ba/);
    expect(order.replace(/(.)\1*/g, '$1').length).toBeGreaterThan(2);
    expect(await fs.stat(`${registryAuditFile(dir)}.lock`).catch(() => undefined)).toBeUndefined();
  });

  it('a lock left by a crashed process is broken; a torn last line stays as evidence', async () => {
    const dir = path.join(tmp.dir, 'stale');
    await fs.mkdir(dir, { recursive: true });
    await appendRegistryAudit(dir, { command: 'train' });
    // What a holder that crashed leaves: the lock directory, no longer refreshed.
    const lock = `${registryAuditFile(dir)}.lock`;
    await fs.mkdir(lock);
    const old = new Date(Date.now() - 60_000);
    await fs.utimes(lock, old, old);
    await fs.appendFile(registryAuditFile(dir), '{"seq":2,"tor');
    const rec = await appendRegistryAudit(dir, { command: 'rm' });
    expect(rec.seq).toBe(2); // the torn line has no seq
    const v = await verifyRegistryAudit(dir);
    expect(v.problems).toEqual([{ line: 2, reason: 'not valid JSON' }]);
  });
});
