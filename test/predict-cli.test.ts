// `mlctl predict` end to end: in-process through main(argv) (CSV to stdout, --json summary, shards + --merge equal
// to one run, tabular packages), and as a real process killed with SIGKILL mid-run: the file holds only whole
// lines and --resume completes it to the rows of an uninterrupted run.
import { appendFile, link, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPackage } from '../src/artifacts/package.js';
import { predict } from '../src/predict/index.js';
import { listInputs } from '../src/predict/inputs.js';
import { selectBackend } from '../src/runtime/backend.js';
import { createMemoryLogger } from '../src/util/log.js';
import { runCli, spawnCli } from './helpers/cli.js';
import { mlctlHome, synthDataset, tinyPackage, type MlctlHome } from './helpers/fixtures.js';

let tmp: MlctlHome;
let data: string;
let count = 0;

/** `mlctl ARGS` on the CPU backend; predict and train on TF.js unless a test picks the engine. */
function mlctl(...args: string[]) {
  const engine = !['predict', 'train'].includes(args[0]!) || args.includes('--engine') || args.includes('--merge') ? [] : ['--engine', 'tfjs'];
  return runCli([...args, ...engine, '--backend', 'cpu']);
}

const body = (csv: string) => csv.trim().split('\n').slice(1).map((l) => l.split(',').slice(0, 4).join(','));

beforeAll(async () => {
  tmp = await mlctlHome('mlctl-predict-cli-');
  data = path.join(tmp.dir, 'data');
  await synthDataset(data, { classes: 3, perClass: 5, size: 32 });
  for await (const _ of listInputs([data])) count++;
  await tinyPackage(tmp.artifacts, { name: 'tiny' });
});

afterAll(() => tmp?.cleanup());

describe('mlctl predict', () => {
  it('writes CSV to stdout (summary on stderr), or to --out with one --json summary document', async () => {
    const r = await mlctl('predict', 'tiny', data, '--top-k', '1');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe('index,input,label_1,score_1,error');
    expect(r.stdout.trim().split('\n')).toHaveLength(count + 1);
    expect(r.stderr).toMatch(new RegExp(`${count} row\\(s\\) → -`));
    const out = path.join(tmp.dir, 'p.jsonl');
    const j = await mlctl('predict', 'tiny', data, '--out', out, '--json');
    expect(j.code, j.stderr).toBe(0);
    expect(j.json).toMatchObject({ ok: true, command: 'predict', rows: count, errors: 0, format: 'jsonl', shard: '0/1', model: { name: 'tiny', version: 1 } });
    expect((await readFile(out, 'utf8')).trim().split('\n')).toHaveLength(count);
  });

  it('refuses contradictory or missing arguments with exit 2 and says why', async () => {
    expect((await mlctl('predict', 'tiny', data, '--json')).code).toBe(2);
    const none = await mlctl('predict', 'tiny');
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/no inputs/);
    expect((await mlctl('predict', 'tiny', data, '--shard', '3/3')).stderr).toMatch(/0-based/);
    const missing = await mlctl('predict', 'tiny', path.join(tmp.dir, 'absent'), '--json', '--out', path.join(tmp.dir, 'z.csv'));
    expect(missing.code).toBe(1);
    expect(missing.json!.error.code).toBe('PREDICT_INPUT');
    const typo = await mlctl('predict', 'tinny', data);
    expect(typo.code).toBe(1);
    expect(typo.stderr).toMatch(/no model named tinny .*did you mean tiny\?/);
  });

  it('--shard i/3 on each of 3 runs, then --merge, gives the rows of one run', async () => {
    const whole = path.join(tmp.dir, 'whole.csv');
    expect((await mlctl('predict', 'tiny', data, '--out', whole)).code).toBe(0);
    const dir = path.join(tmp.dir, 'shards');
    for (let i = 0; i < 3; i++) {
      const r = await mlctl('predict', 'tiny', data, '--shard', `${i}/3`, '--out', path.join(dir, `predictions-${i}-of-3.csv`), '--batch-size', '2');
      expect(r.code, r.stderr).toBe(0);
    }
    const merged = path.join(tmp.dir, 'merged.csv');
    const m = await mlctl('predict', '--merge', dir, '--out', merged, '--json');
    expect(m.code, m.stderr).toBe(0);
    expect(m.json).toMatchObject({ shards: 3, rows: count });
    expect(body(await readFile(merged, 'utf8'))).toEqual(body(await readFile(whole, 'utf8')));
    expect((await readFile(merged, 'utf8')).split('\n')[0]).toBe((await readFile(whole, 'utf8')).split('\n')[0]);
  });

  it('survives SIGKILL mid-run: whole lines only, and --resume finishes to the same rows', async () => {
    // 600 inputs (hard links to the same few files, each its own input) at batch 1: slow enough to kill mid-run.
    const list = path.join(tmp.dir, 'many.txt');
    const files: string[] = [];
    for await (const item of listInputs([data])) files.push(item.source);
    const many = path.join(tmp.dir, 'many');
    await mkdir(many);
    const names = Array.from({ length: 600 }, (_, i) => `many/${String(i).padStart(4, '0')}.png`);
    await Promise.all(names.map((n, i) => link(files[i % files.length]!, path.join(tmp.dir, n))));
    await writeFile(list, names.join('\n') + '\n');
    const out = path.join(tmp.dir, 'killed.csv');
    const args = ['predict', 'tiny', list, '--out', out, '--batch-size', '1', '--engine', 'tfjs', '--backend', 'cpu'];
    const cli = spawnCli(args);
    const end = Date.now() + 30_000;
    for (;;) {
      const text = await readFile(out, 'utf8').catch(() => '');
      if (text.split('\n').length > 40 || Date.now() > end) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    cli.child.kill('SIGKILL');
    await cli.exited;
    const partial = await readFile(out, 'utf8');
    expect(partial.endsWith('\n')).toBe(true);
    const done = partial.trim().split('\n').length - 1;
    expect(done).toBeGreaterThan(30);
    expect(done).toBeLessThan(600);
    const r = await mlctl('predict', 'tiny', list, '--out', out, '--resume', '--batch-size', '64', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({ resumed: { rows: done }, rows: 600 - done });
    const full = path.join(tmp.dir, 'unkilled.csv');
    await mlctl('predict', 'tiny', list, '--out', full, '--batch-size', '64');
    const a = body(await readFile(out, 'utf8')).map((l) => l.split(',').slice(0, 3).join(','));
    const b = body(await readFile(full, 'utf8')).map((l) => l.split(',').slice(0, 3).join(','));
    expect(a).toEqual(b);
  }, 90_000);
});

describe('mlctl predict --resume / --merge only continue and join what mlctl wrote (#28)', () => {
  /** A run of `tiny` over the dataset interrupted after two chunks (as Ctrl-C leaves it): the file to resume. */
  async function interrupted(name: string): Promise<string> {
    await selectBackend('cpu');
    const out = path.join(tmp.dir, name);
    let chunks = 0;
    const res = await predict(await loadPackage('tiny'), { inputs: [data], out, format: 'csv', topK: 2, batchSize: 2, engine: 'tfjs', logger: createMemoryLogger(), shouldStop: () => ++chunks >= 2 });
    expect(res.interrupted).toBe(true);
    return out;
  }

  it('--resume refuses another model, other inputs and a row mlctl did not write (PREDICT_RESUME); the same run continues', async () => {
    await tinyPackage(tmp.artifacts, { name: 'other', seed: 9 });
    const out = await interrupted('mixed.csv');
    const before = await readFile(out, 'utf8');
    const mixed = await mlctl('predict', 'other', data, '--out', out, '--resume', '--top-k', '2', '--json');
    expect(mixed.code).toBe(1);
    expect(mixed.json.error.code).toBe('PREDICT_RESUME');
    expect(mixed.json.error.message).toMatch(/holds rows of tiny v1 .*this run uses other v1 .*must not mix/);
    const fewer = await mlctl('predict', 'tiny', path.join(data, 'circle'), '--out', out, '--resume', '--top-k', '2', '--json');
    expect(fewer.json.error.code).toBe('PREDICT_RESUME');
    expect(fewer.json.error.message).toMatch(/made from the inputs/);
    expect(await readFile(out, 'utf8')).toBe(before);
    const same = await mlctl('predict', 'tiny', data, '--out', out, '--resume', '--top-k', '2', '--json');
    expect(same.code, same.stderr).toBe(0);
    expect(same.json.resumed.rows + same.json.rows).toBe(count);

    // A row added by hand (whole and well-formed) is not kept: the file is no longer what mlctl left.
    const forged = await interrupted('forged.csv');
    await appendFile(forged, `${count - 1},${path.join(data, 'forged.png')},circle,0.999,square,0.001,\n`);
    const r = await mlctl('predict', 'tiny', data, '--out', forged, '--resume', '--top-k', '2', '--json');
    expect(r.code).toBe(1);
    expect(r.json.error.code).toBe('PREDICT_RESUME');
    expect(r.json.error.message).toMatch(/changed after mlctl wrote it .*start it again with --force/);
  });

  it('--merge refuses a shard output with a row deleted after its run (PREDICT_MERGE) and writes nothing', async () => {
    const dir = path.join(tmp.dir, 'shards-cut');
    for (let i = 0; i < 2; i++) expect((await mlctl('predict', 'tiny', data, '--shard', `${i}/2`, '--out', path.join(dir, `p-${i}.csv`))).code).toBe(0);
    const victim = path.join(dir, 'p-1.csv');
    const lines = (await readFile(victim, 'utf8')).split('\n');
    lines.splice(2, 1);
    await writeFile(victim, lines.join('\n'));
    const merged = path.join(tmp.dir, 'merged-cut.csv');
    const m = await mlctl('predict', '--merge', dir, '--out', merged, '--json');
    expect(m.code).toBe(1);
    expect(m.json.error.code).toBe('PREDICT_MERGE');
    expect(m.json.error.message).toMatch(/p-1\.csv changed after its run finished .*rows were removed, added or edited/);
    expect(await readFile(merged).catch(() => undefined)).toBeUndefined();
  });
});

describe('mlctl predict: CSV lists in, CSV out (#28)', () => {
  it('an unclosed quote in a CSV list is CSV_INVALID naming the line; a row without the image column is an error row', async () => {
    const files: string[] = [];
    for await (const item of listInputs([data])) files.push(item.source);
    const broken = path.join(tmp.dir, 'broken.csv');
    await writeFile(broken, `image,note\n${files[0]},ok\n"${files[1]},unclosed\n${files[2]},after\n`);
    const r = await mlctl('predict', 'tiny', broken, '--out', path.join(tmp.dir, 'broken-out.csv'), '--json');
    expect(r.code).toBe(1);
    expect(r.json.error.code).toBe('CSV_INVALID');
    expect(r.json.error.message).toMatch(/broken\.csv: a quoted field opened on line 3 is never closed/);

    const gappy = path.join(tmp.dir, 'gappy.csv');
    await writeFile(gappy, `note,image\nfirst,${files[0]}\nno image here\nthird,\nfourth,${files[1]}\n`);
    const out = path.join(tmp.dir, 'gappy-out.csv');
    const g = await mlctl('predict', 'tiny', gappy, '--out', out, '--json');
    expect(g.code, g.stderr).toBe(0);
    expect(g.json).toMatchObject({ rows: 4, errors: 2 });
    const rows = parseCsv(await readFile(out, 'utf8'), { columns: true }) as Array<Record<string, string>>;
    expect(rows.map((x) => [x.index, x.input, Boolean(x.error)])).toEqual([
      ['0', files[0], false],
      ['1', `${gappy}:3`, true],
      ['2', `${gappy}:4`, true],
      ['3', files[1], false],
    ]);
    expect(rows[1]!.error).toMatch(/^line 3 of .*gappy\.csv has no "image" column value/);
  });

  it('escapes cells a spreadsheet would run as formulas (OWASP), and reads them back for --resume and --merge', async () => {
    const dir = path.join(tmp.dir, 'formulas');
    await mkdir(dir);
    const [img] = await (async () => {
      const f: string[] = [];
      for await (const item of listInputs([data])) f.push(item.source);
      return f;
    })();
    const names = ['=HYPERLINK("x").jpg', '+1.jpg', '-2+3.jpg', '@SUM(A1).jpg', "'quoted.jpg", 'plain.jpg'];
    for (const n of names) await link(img!, path.join(dir, n));
    await tinyPackage(tmp.artifacts, { name: 'formulas', labels: ['=cmd|calc', '@label', 'ok'] });
    const out = path.join(tmp.dir, 'formulas.csv');
    const r = await mlctl('predict', 'formulas', dir, '--out', out, '--top-k', '3', '--json');
    expect(r.code, r.stderr).toBe(0);
    const cells = (parseCsv(await readFile(out, 'utf8')) as string[][]).slice(1);
    expect(cells).toHaveLength(names.length);
    // Labels that start with = or @ carry the ' prefix; the inputs here are absolute paths (they start with /).
    expect(new Set(cells.flatMap((c) => [c[2], c[4], c[6]]))).toEqual(new Set(["'=cmd|calc", "'@label", 'ok']));
    expect(cells.every((c) => c[1]!.startsWith(dir))).toBe(true);
    // A relative listing: those input cells begin with the file name.
    const rel = path.join(tmp.dir, 'formulas-rel.csv');
    const list = path.join(dir, 'list.txt');
    await writeFile(list, names.join('\n') + '\n');
    expect((await mlctl('predict', 'formulas', list, '--out', rel, '--top-k', '1')).code).toBe(0);
    const relInputs = (parseCsv(await readFile(rel, 'utf8')) as string[][]).slice(1).map((c) => c[1]);
    expect(relInputs).toEqual(names.map((n) => (/^[=+\-@']/.test(n) ? `'${n}` : n)));
    // mlctl reads its own escaping back: a resume finds every input done, a merge keeps the rows as written.
    const again = await mlctl('predict', 'formulas', list, '--out', rel, '--top-k', '1', '--resume', '--json');
    expect(again.json).toMatchObject({ rows: 0, resumed: { rows: names.length } });
    const shards = path.join(tmp.dir, 'formula-shards');
    for (let i = 0; i < 2; i++) expect((await mlctl('predict', 'formulas', list, '--shard', `${i}/2`, '--out', path.join(shards, `s-${i}.csv`), '--top-k', '1')).code).toBe(0);
    const merged = path.join(tmp.dir, 'formulas-merged.csv');
    expect((await mlctl('predict', '--merge', shards, '--out', merged)).code).toBe(0);
    expect(body(await readFile(merged, 'utf8'))).toEqual(body(await readFile(rel, 'utf8')));
  });
});

describe('mlctl predict --require-signature', () => {
  it('refuses an unsigned package and predicts once it is signed by a trusted key', async () => {
    const keys = path.join(tmp.dir, 'keys');
    expect((await mlctl('keys', 'generate', '--out', keys)).code).toBe(0);
    const trusted = path.join(tmp.dir, 'trusted');
    await mkdir(trusted);
    await writeFile(path.join(trusted, 'mlctl.pub.pem'), await readFile(path.join(keys, 'mlctl.pub.pem')));
    const refused = await mlctl('predict', 'tiny', data, '--require-signature', '--trusted-keys', trusted, '--out', path.join(tmp.dir, 'sig.csv'), '--json');
    expect(refused.code).toBe(1);
    expect(refused.json!.error.code).toBe('SIGNATURE_MISSING');
    expect((await mlctl('sign', 'tiny', '--key', path.join(keys, 'mlctl.key.pem'))).code).toBe(0);
    const ok = await mlctl('predict', 'tiny', data, '--require-signature', '--trusted-keys', trusted, '--out', path.join(tmp.dir, 'sig.csv'), '--force', '--json');
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.json!.rows).toBe(count);
  });
});

describe('mlctl predict on tabular packages', () => {
  it('writes one row per CSV row: top-k labels for a classifier, the value for a regression model', async () => {
    const cls = ['x1,x2,kind'];
    const reg = ['x1,x2,y'];
    for (let i = 0; i < 60; i++) {
      const k = i % 2;
      cls.push(`${(k * 2 + (i % 7) / 7).toFixed(3)},${((i * 13) % 11 / 11).toFixed(3)},${k ? 'b' : 'a'}`);
      reg.push(`${(i / 10).toFixed(2)},${((i * 7) % 5).toFixed(2)},${(3 * (i / 10) - (i * 7) % 5 + 1).toFixed(3)}`);
    }
    await writeFile(path.join(tmp.dir, 'cls.csv'), cls.join('\n') + '\n');
    await writeFile(path.join(tmp.dir, 'reg.csv'), reg.join('\n') + '\n');
    expect((await mlctl('train', '--model', 'logistic', '--data', path.join(tmp.dir, 'cls.csv'), '--target', 'kind', '--name', 'cls', '--json')).code).toBe(0);
    expect((await mlctl('train', '--model', 'linear', '--data', path.join(tmp.dir, 'reg.csv'), '--target', 'y', '--name', 'reg', '--json')).code).toBe(0);
    // Feature rows without the target column, as at prediction time.
    await writeFile(path.join(tmp.dir, 'new.csv'), 'x1,x2\n0.1,0.5\n2.9,0.2\n');
    const c = await mlctl('predict', 'cls', path.join(tmp.dir, 'new.csv'), '--engine', 'auto');
    expect(c.code, c.stderr).toBe(0);
    const rows = c.stdout.trim().split('\n');
    expect(rows[0]).toBe('index,input,label_1,score_1,label_2,score_2,error');
    expect(rows[1]).toMatch(new RegExp(`^0,${path.join(tmp.dir, 'new.csv').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:2,a,0\\.\\d+,b,`));
    expect(rows[2]).toMatch(/^1,.*:3,b,/);
    await writeFile(path.join(tmp.dir, 'newreg.csv'), 'x1,x2\n1,2\n');
    const r = await mlctl('predict', 'reg', path.join(tmp.dir, 'newreg.csv'), '--format', 'jsonl', '--engine', 'auto');
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout.trim());
    expect(doc.value).toBeCloseTo(3 * 1 - 2 + 1, 0);
    const wrong = await mlctl('predict', 'cls', data);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/takes tabular rows: pass CSV files/);
  });
});
