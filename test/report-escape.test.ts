// evaluate --report's report.md (issue #28 item 13): class labels, file names and messages come from the data and
// are written as inert Markdown — no raw HTML, no links, no broken tables — whatever the folders are called.
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mdCode, mdText } from '../src/util/table.js';
import { runCli } from './helpers/cli.js';
import { tempDir, tinyPackage } from './helpers/fixtures.js';

const HOSTILE = ['<img src=x onerror=alert(1)>', 'a|b *bold* [link](javascript:alert(1))', 'plain'];

let tmp: { dir: string; cleanup: () => Promise<void> };
let md: string;

beforeAll(async () => {
  tmp = await tempDir('mlctl-report-escape-');
  process.env.MLCTL_CACHE = path.join(tmp.dir, 'cache');
  const data = path.join(tmp.dir, 'data');
  for (const [i, label] of HOSTILE.entries()) {
    await mkdir(path.join(data, label), { recursive: true });
    for (let j = 0; j < 4; j++) {
      await sharp({ create: { width: 32, height: 32, channels: 3, background: { r: 60 * i + j, g: 90, b: 200 - 50 * i } } }).png().toFile(path.join(data, label, `<b onclick=x>${j}.png`));
    }
  }
  const pkg = await tinyPackage(path.join(tmp.dir, 'artifacts'), { name: 'hostile', labels: HOSTILE, seed: 4 });
  const report = path.join(tmp.dir, 'report');
  const r = await runCli(['evaluate', pkg.dir, '--data', data, '--split', 'all', '--report', report, '--latency-runs', '2', '--worst', '4', '--min-accuracy', '0', '--engine', 'tfjs', '--backend', 'cpu', '--json']);
  expect(r.code, r.stderr).toBe(0);
  md = await readFile(path.join(report, 'report.md'), 'utf8');
});

afterAll(async () => {
  delete process.env.MLCTL_CACHE;
  await tmp?.cleanup();
});

describe('report.md', () => {
  it('carries no raw HTML from labels or file names', () => {
    expect(md).not.toMatch(/<img|<b |onerror=alert\(1\)>/);
    expect(md).toContain('&lt;img src=x onerror=alert(1)&gt;');
    // The link's brackets are escaped: it stays text.
    expect(md).not.toMatch(/(?<!\\)\]\(javascript:/);
    expect(md).toContain('\\[link\\](javascript:alert(1))');
  });

  it('keeps every table row whole: a "|" in a label is escaped, not a new column', () => {
    const perClass = md.split('### Per class')[1]!.split('###')[0]!;
    const rows = perClass.split('\n').filter((l) => l.startsWith('|'));
    // Header, separator, three classes, macro and weighted averages: each with exactly 5 cells.
    expect(rows).toHaveLength(7);
    for (const row of rows) expect(row.split(/(?<!\\)\|/).length - 2, row).toBe(5);
  });
});

describe('mdText / mdCode', () => {
  it('escape what Markdown or HTML would interpret, and leave plain text alone', () => {
    expect(mdText('circle')).toBe('circle');
    expect(mdText('<script>&')).toBe('&lt;script&gt;&amp;');
    expect(mdText('a|b_c*d[e](f)`g`\nh')).toBe('a\\|b\\_c\\*d\\[e\\](f)\\`g\\` h');
    expect(mdCode('data/x')).toBe('`data/x`');
    expect(mdCode('a`b')).toBe('``a`b``');
    expect(mdCode('`x`')).toBe('`` `x` ``');
  });
});
