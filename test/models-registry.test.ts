// The model registry (src/registry, artifacts/registry-file.ts) and `mlctl models …` through main(argv): real
// packages on disk (savePackage), a lineage chain with metric deltas, corrupt packages listed as corrupt, NAME:TAG
// everywhere, close matches for typos, rm/gc rules, and two real processes tagging at once without losing a tag.
import { spawn } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ManifestDraft } from '../src/artifacts/manifest.js';
import { lineageFrom, loadPackage, resolvePackageDir, savePackage, type LoadedPackage } from '../src/artifacts/package.js';
import { verifyRegistryAudit } from '../src/artifacts/audit-log.js';
import { readRegistry } from '../src/artifacts/registry-file.js';
import { imageInputSpec } from '../src/data/preprocess.js';
import { closeMatches } from '../src/util/suggest.js';
import { runCli } from './helpers/cli.js';
import { mlctlHome, type MlctlHome } from './helpers/fixtures.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let tmp: MlctlHome;
let root: string;

const mlctl = (...args: string[]) => runCli(args);

function draft(over: Partial<ManifestDraft> = {}): ManifestDraft {
  return {
    task: 'image-classification',
    labels: ['cat', 'dog'],
    input: imageInputSpec(32),
    output: { name: 'predictions', kind: 'probabilities', size: 2 },
    architecture: { type: 'vgg16-transfer', backbone: 'vgg16', head: { dense: [1024, 2] } },
    formats: { tfjs: 'model.json' },
    metrics: { valAccuracy: 0.9 },
    training: { epochs: 10, seed: 42 },
    lineage: [{ op: 'train', at: new Date().toISOString(), tool: 'mlctl', params: { epochs: 10 } }],
    ...over,
  };
}

async function save(name: string, d: ManifestDraft, bytes: number): Promise<LoadedPackage> {
  return savePackage({ root, name, draft: d, write: (dir) => writeFile(path.join(dir, 'model.json'), 'x'.repeat(bytes)) });
}

/** v1 trained → v2 pruned from v1 → v3 quantized from v2 (rejected by its gate), and v4 trained afresh. */
let v1: LoadedPackage, v2: LoadedPackage, v3: LoadedPackage;

beforeAll(async () => {
  tmp = await mlctlHome('mlctl-registry-');
  root = tmp.artifacts;
  v1 = await save('sample', draft(), 4000);
  v2 = await save('sample', draft({ metrics: { valAccuracy: 0.88, sparsity: 0.5 }, lineage: [...v1.manifest.lineage, lineageFrom(v1, 'prune', { sparsity: 0.5 })] }), 2000);
  v3 = await save('sample', draft({ metrics: { valAccuracy: 0.8 }, status: 'rejected', statusReason: 'accuracy dropped 8 points (max 1)', lineage: [...v2.manifest.lineage, lineageFrom(v2, 'quantize', { dtype: 'int8' })] }), 1000);
  await save('sample', draft({ labels: ['cat', 'dog', 'bird'], output: { name: 'predictions', kind: 'probabilities', size: 3 }, metrics: { valAccuracy: 0.93 }, training: { epochs: 20, seed: 42 } }), 4100);
  await save('other', draft(), 100);
});

afterAll(() => tmp?.cleanup());

describe('models ls', () => {
  it('lists every version with task, backbone, size, accuracy, tags, status and parent (table and --json)', async () => {
    const r = await mlctl('models', 'ls', '--json');
    expect(r.code, r.stderr).toBe(0);
    const pk = r.json!.packages as Array<Record<string, any>>;
    expect(pk.map((p) => `${p.name}@${p.version}`)).toEqual(['other@1', 'sample@1', 'sample@2', 'sample@3', 'sample@4']);
    const s2 = pk.find((p) => p.name === 'sample' && p.version === 2)!;
    expect(s2).toMatchObject({ task: 'image-classification', backbone: 'vgg16', bytes: 2000, servedBytes: 2000, servedFormat: 'tfjs', accuracy: 0.88, accuracySplit: 'validation', status: 'ok', parent: 'sample@1', op: 'prune' });
    expect(pk.find((p) => p.version === 3 && p.name === 'sample')).toMatchObject({ status: 'rejected', reason: expect.stringMatching(/accuracy dropped/) });
    const text = await mlctl('models', 'ls', 'sample');
    expect(text.code).toBe(0);
    // Size served (and its format), on disk, and the accuracy with the split it was measured on.
    expect(text.stdout).toMatch(/│ sample\s*│ 2\s*│ image-classification │ vgg16\s*│ 1\.95 KiB tfjs\s*│ 1\.95 KiB\s*│ 88\.0% val/);
    expect(text.stdout).not.toMatch(/other/);
  });

  it('lists corrupt packages as corrupt with the reason (not skipped), and --verify catches changed bytes', async () => {
    const bad = await save('broken', draft(), 50);
    await save('broken', draft(), 60);
    await save('broken', draft(), 70);
    await writeFile(path.join(bad.dir, 'mlctl.json'), '{ not json');
    await writeFile(path.join(root, 'broken', '2', 'model.json'), 'y'.repeat(61)); // resized
    await writeFile(path.join(root, 'broken', '3', 'model.json'), 'z'.repeat(70)); // same size, other bytes
    const quick = await mlctl('models', 'ls', 'broken', '--json');
    const st = (quick.json!.packages as Array<Record<string, any>>).map((p) => [p.version, p.status, p.reason ?? '']);
    expect(st[0]).toEqual([1, 'corrupt', expect.stringMatching(/not valid JSON/)]);
    expect(st[1]).toEqual([2, 'corrupt', expect.stringMatching(/model\.json has 61 bytes/)]);
    expect(st[2]).toEqual([3, 'ok', '']);
    expect(quick.stderr).toMatch(/broken@1 is corrupt/);
    const full = await mlctl('models', 'ls', 'broken', '--verify', '--json');
    expect((full.json!.packages as Array<Record<string, any>>)[2]).toMatchObject({ status: 'corrupt', reason: expect.stringMatching(/sha256/) });
    const show = await mlctl('models', 'show', 'broken@3', '--json');
    expect(show.code).toBe(1);
    expect(show.json!.verified).toBe(false);
    await rm(path.join(root, 'broken'), { recursive: true });
  });

  it('exits 1 with close matches for an unknown model', async () => {
    const r = await mlctl('models', 'ls', 'sampel', '--json');
    expect(r.code).toBe(1);
    expect(r.json!.error.code).toBe('MODEL_NOT_FOUND');
    expect(r.json!.error.message).toMatch(/did you mean sample\?/);
  });
});

describe('models show and diff', () => {
  it('shows the lineage chain with each step\'s parameters and metric/size deltas, files verified', async () => {
    const r = await mlctl('models', 'show', 'sample@3', '--json');
    expect(r.code, r.stderr).toBe(0);
    const steps = r.json!.lineage as Array<Record<string, any>>;
    expect(steps.map((s) => [s.op, s.produced, s.present])).toEqual([['train', 'sample@1', true], ['prune', 'sample@2', true], ['quantize', 'sample@3', true]]);
    expect(steps[1]).toMatchObject({ from: 'sample@1', params: { sparsity: 0.5 }, accuracy: 0.88, bytes: 2000 });
    expect(steps[1]!.delta.accuracy).toBeCloseTo(-0.02, 10);
    expect(steps[1]!.delta.bytes).toBe(-2000);
    expect(steps[2]!.delta).toMatchObject({ bytes: -1000 });
    expect(r.json!.verified).toBe(true);
    expect(r.json!.files).toEqual([{ file: 'model.json', bytes: 1000, sha256: v3.manifest.files['model.json']!.sha256, ok: true }]);
    const text = await mlctl('models', 'show', 'sample@3');
    expect(text.stdout).toMatch(/prune .*sample@1 → sample@2.*88\.0% val \(-2\.0 pts\).*1\.95 KiB tfjs \(-1\.95 KiB\).*sparsity=0\.5/);
    expect(text.stdout).toMatch(/all sha256 verified/);
  });

  it('marks a removed ancestor in the chain', async () => {
    const chain = await save('chain', draft(), 10);
    const child = await save('chain', draft({ lineage: [...chain.manifest.lineage, lineageFrom(chain, 'prune', { sparsity: 0.3 })] }), 5);
    const r = await mlctl('models', 'rm', 'chain@1', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.json!.dependents).toEqual(['chain@2']);
    const s = await mlctl('models', 'show', `chain@${child.manifest.version}`, '--json');
    expect((s.json!.lineage as Array<Record<string, any>>).map((x) => x.present)).toEqual([false, true]);
  });

  it('diffs parameters, metrics, size and labels', async () => {
    const r = await mlctl('models', 'diff', 'sample@1', 'sample@4', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.json!.labels).toEqual({ added: ['bird'], removed: [], reordered: false });
    expect(r.json!.size).toEqual({ a: 4000, b: 4100, delta: 100, format: { a: 'tfjs', b: 'tfjs' }, total: { a: 4000, b: 4100, delta: 100 } });
    const metric = (r.json!.metrics as Array<Record<string, any>>).find((c) => c.key === 'metrics.valAccuracy')!;
    expect(metric).toMatchObject({ metric: 'accuracy', split: 'validation', label: 'accuracy (val)', a: 0.9 });
    expect(metric.delta).toBeCloseTo(0.03, 10);
    const text = await mlctl('models', 'diff', 'sample@1', 'sample@4');
    expect(text.stdout).toMatch(/│ accuracy \(val\)\s*│ 90\.00%\s*│ 93\.00%\s*│ \+3\.00 pts\s*│/);
    expect(r.json!.parameters).toContainEqual({ key: 'training.epochs', a: 10, b: 20, delta: 10 });
    expect(r.json!.parameters).toContainEqual({ key: 'output.size', a: 2, b: 3, delta: 1 });
    expect(r.json!.files.changed).toEqual(['model.json']);
    const same = await mlctl('models', 'diff', 'sample@2', 'sample@2');
    expect(same.stdout).toMatch(/identical/);
  });
});

describe('models tag / untag and NAME:TAG', () => {
  it('tags a version, resolves NAME:TAG everywhere, moves the tag and records who/when', async () => {
    process.env.MLCTL_ACTOR = 'ci-run-7';
    try {
      const r = await mlctl('models', 'tag', 'sample@2', 'production', '--note', 'ticket 12', '--json');
      expect(r.code, r.stderr).toBe(0);
      expect(r.json).toMatchObject({ name: 'sample', tag: 'production', version: 2, setBy: 'ci-run-7' });
      expect(await resolvePackageDir('sample:production')).toBe(path.join(root, 'sample', '2'));
      expect((await loadPackage('sample:production')).manifest.version).toBe(2);
      const moved = await mlctl('models', 'tag', 'sample@4', 'production');
      expect(moved.stdout).toMatch(/sample:production → version 4 \(moved from version 2\)/);
      const doc = await readRegistry(path.join(root, 'sample'));
      expect(doc.tags.production).toMatchObject({ version: 4, setBy: 'ci-run-7', via: expect.stringMatching(/^mlctl .* models tag$/) });
      // The changes are in the registry's audit log (who, when, what), hash-chained.
      const audit = await verifyRegistryAudit(root);
      expect(audit.ok).toBe(true);
      const tags = audit.records.filter((r) => r.command === 'tag' && r.package?.name === 'sample');
      expect(tags.map((r) => [r.package!.version, r.details?.tag, r.details?.previous, r.details?.actor])).toEqual([[2, 'production', undefined, 'ci-run-7'], [4, 'production', 2, 'ci-run-7']]);
      expect(tags[0]!.details?.note).toBe('ticket 12');
      expect(tags[0]!.package!.manifestSha256).toBe(v2.manifestSha256);
      // Commands that take a model follow the tag (here: models show).
      const show = await mlctl('models', 'show', 'sample:production', '--json');
      expect(show.json!.package).toMatchObject({ version: 4, tags: ['production'] });
    } finally {
      delete process.env.MLCTL_ACTOR;
    }
  });

  it('refuses bad tags and rejected versions; unknown names, versions and tags exit 1 with close matches', async () => {
    expect((await mlctl('models', 'tag', 'sample@2', '9lives')).code).toBe(2);
    const rejected = await mlctl('models', 'tag', 'sample@3', 'staging');
    expect(rejected.code).toBe(2);
    expect(rejected.stderr).toMatch(/rejected .*--force/);
    expect((await mlctl('models', 'tag', 'sample@3', 'canary', '--force')).code).toBe(0);
    const ver = await mlctl('models', 'tag', 'sample@9', 'staging', '--json');
    expect(ver.code).toBe(1);
    expect(ver.json!.error).toMatchObject({ code: 'VERSION_NOT_FOUND', message: expect.stringMatching(/versions: 1, 2, 3, 4/) });
    const tag = await mlctl('models', 'show', 'sample:prodution', '--json');
    expect(tag.code).toBe(1);
    expect(tag.json!.error).toMatchObject({ code: 'TAG_NOT_FOUND', message: expect.stringMatching(/did you mean production\?/) });
    const name = await mlctl('models', 'show', 'sampl:production', '--json');
    expect(name.json!.error).toMatchObject({ code: 'MODEL_NOT_FOUND', message: expect.stringMatching(/did you mean sample\?/) });
    await expect(loadPackage('sample@12')).rejects.toThrow(/model sample has no version 12/);
    expect(closeMatches('prod', ['production', 'staging'])).toEqual(['production']);
  });

  it('untags (NAME TAG, NAME:TAG, NAME@V TAG checks where it points)', async () => {
    await mlctl('models', 'tag', 'sample@1', 'staging');
    const wrong = await mlctl('models', 'untag', 'sample@2', 'staging');
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/points at version 1, not 2/);
    expect((await mlctl('models', 'untag', 'sample:staging')).code).toBe(0);
    expect((await readRegistry(path.join(root, 'sample'))).tags.staging).toBeUndefined();
    const again = await mlctl('models', 'untag', 'sample', 'staging', '--json');
    expect(again.json!.error.code).toBe('TAG_NOT_FOUND');
  });

  it('never loses a tag when two processes tag at once (lock file + atomic rename)', async () => {
    // Both processes start tagging at the same moment (a barrier of ready files), 20 tags each.
    const barrier = path.join(tmp.dir, 'barrier');
    await rm(barrier, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(barrier));
    const script = `
      const fs = await import('node:fs');
      const { tagVersion } = await import(${JSON.stringify(path.join(repoRoot, 'src/registry/tags.ts'))});
      const [who, other, dir] = process.argv.slice(1);
      fs.writeFileSync(dir + '/' + who, '');
      while (!fs.existsSync(dir + '/' + other)) await new Promise((r) => setTimeout(r, 2));
      for (let i = 0; i < 20; i++) await tagVersion('other@1', 't-' + who + '-' + i, { root: process.env.MLCTL_ARTIFACTS });
    `;
    const run = (who: string, other: string) =>
      new Promise<number | null>((resolve) => {
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, who, other, barrier], { cwd: repoRoot, env: { ...process.env }, stdio: ['ignore', 'ignore', 'inherit'] });
        child.on('exit', resolve);
      });
    expect(await Promise.all([run('a', 'b'), run('b', 'a')])).toEqual([0, 0]);
    const doc = await readRegistry(path.join(root, 'other'));
    const tags = Object.keys(doc.tags).sort();
    expect(tags).toHaveLength(40);
    const audit = await verifyRegistryAudit(root);
    expect(audit.ok, JSON.stringify(audit.problems)).toBe(true);
    expect(audit.records.filter((r) => r.command === 'tag' && r.package?.name === 'other')).toHaveLength(40);
    expect(JSON.parse(await readFile(path.join(root, 'other', 'registry.json'), 'utf8')).tags['t-a-19'].version).toBe(1);
  }, 60_000);
});

describe('models rm and gc', () => {
  it('rm refuses a tagged version without --force; with it the tags go too', async () => {
    const v = await save('rmme', draft(), 10);
    await mlctl('models', 'tag', `rmme@${v.manifest.version}`, 'production');
    const refused = await mlctl('models', 'rm', 'rmme@1', '--json');
    expect(refused.code).toBe(1);
    expect(refused.json!.error).toMatchObject({ code: 'MODEL_TAGGED', message: expect.stringMatching(/tagged production/) });
    expect((await loadPackage('rmme@1')).manifest.version).toBe(1);
    const forced = await mlctl('models', 'rm', 'rmme@1', '--force', '--json');
    expect(forced.code).toBe(0);
    expect(forced.json!.untagged).toEqual(['production']);
    const doc = await readRegistry(path.join(root, 'rmme'));
    expect(doc.tags).toEqual({});
    expect((await verifyRegistryAudit(root)).records.at(-1)).toMatchObject({ command: 'rm', before: { name: 'rmme', version: 1 }, details: { untagged: ['production'] } });
  });

  it('gc keeps the newest N, tagged versions and the lineage they need (dry run first)', async () => {
    // gc: v1 → v2 (pruned from v1) tagged production; v3, v4, v5 trained afresh.
    const a = await save('gc', draft(), 10);
    const b = await save('gc', draft({ lineage: [...a.manifest.lineage, lineageFrom(a, 'prune', {})] }), 10);
    await save('gc', draft(), 10);
    await save('gc', draft(), 10);
    await save('gc', draft(), 10);
    await mlctl('models', 'tag', `gc@${b.manifest.version}`, 'production');
    const dry = await mlctl('models', 'gc', 'gc', '--keep', '1', '--dry-run', '--json');
    expect(dry.code, dry.stderr).toBe(0);
    const plan = Object.fromEntries((dry.json!.decisions as Array<Record<string, any>>).map((d) => [d.version, [d.action, d.why.join(',')]]));
    expect(plan).toEqual({ 1: ['keep', 'lineage of gc@2'], 2: ['keep', 'tag:production'], 3: ['remove', ''], 4: ['remove', ''], 5: ['keep', 'newest'] });
    expect((await loadPackage('gc@3')).manifest.version).toBe(3);
    const real = await mlctl('models', 'gc', 'gc', '--keep', '1', '--json');
    expect(real.json!.removed).toEqual(['gc@3', 'gc@4']);
    await expect(loadPackage('gc@3')).rejects.toThrow(/has no version 3 \(versions: 1, 2, 5\)/);
    expect((await mlctl('models', 'gc', '--json')).code).toBe(2);
  });
});

describe('metrics named with their split (registry/metrics.ts)', () => {
  it('reads train\'s keys, a derived package\'s re-measured validation and the classic trainer\'s blocks', async () => {
    const { namedMetrics, headlineMetric, comparableMetric } = await import('../src/registry/metrics.js');
    const trained = { metrics: { valAccuracy: 0.9, valLoss: 0.3, accuracy: 0.97, loss: 0.1, testAccuracy: 0.88, bestEpoch: 4 } };
    const derived = { metrics: { valAccuracy: 0.89, valExamples: 60, source: trained.metrics } };
    const classic = { metrics: { train: { accuracy: 1, macroF1: 1 }, validation: { accuracy: 0.8, macroF1: 0.75 }, accuracy: 0.8, split: 'validation' } };
    expect(headlineMetric(trained)).toMatchObject({ metric: 'accuracy', split: 'test', value: 0.88 });
    expect(headlineMetric(derived)).toMatchObject({ metric: 'accuracy', split: 'validation', value: 0.89 });
    expect(headlineMetric(classic)).toMatchObject({ metric: 'accuracy', split: 'validation', value: 0.8 });
    // The parent's figures a derived package carries are not its own.
    expect(namedMetrics(derived).map((m) => m.key)).toEqual(['valAccuracy', 'valExamples']);
    // The classic headline copy is not listed twice.
    expect(namedMetrics(classic).filter((m) => m.metric === 'accuracy').map((m) => m.split)).toEqual(['train', 'validation']);
    // A delta compares one split: test is missing from the derived package, so validation it is.
    expect(comparableMetric(trained, derived)).toEqual({ split: 'validation', a: 0.9, b: 0.89 });
  });
});
