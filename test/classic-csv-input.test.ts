// CSV input hardening (issue #14 items 16-18): errors located at the line where a record or its quote starts,
// invalid UTF-8 refused with line and byte offset (or decoded with --encoding), and inputs whose estimated memory
// exceeds --max-memory refused before anything large is allocated.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPackage } from '../src/artifacts/package.js';
import { decodeCsv, invalidUtf8Offset, parseCsvText, readCsv, tabularFromCsv } from '../src/data/csv.js';
import { MlctlError } from '../src/errors.js';
import { runCli } from './helpers/cli.js';
import { mlctlHome } from './helpers/fixtures.js';

async function failure(p: Promise<unknown> | (() => unknown)): Promise<MlctlError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    expect(err).toBeInstanceOf(MlctlError);
    return err as MlctlError;
  }
  throw new Error('expected an MlctlError');
}

const cli = (args: string[], env: Record<string, string> = {}) => runCli([...args, '--json'], { env });

/** A labelled table with a numeric feature that separates the two classes. */
const table = (labels: string[], rows = 40) =>
  ['x,z,label', ...Array.from({ length: rows }, (_, i) => `${(i % 2) * 4 + (i % 5) * 0.1},${i % 3},${labels[i % 2]}`)].join('\n') + '\n';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  ({ dir, cleanup } = await mlctlHome('mlctl-csv-input-'));
});
afterAll(() => cleanup());

describe('errors name the line where the record starts (item 16)', () => {
  it('a bad cell in a record with a quoted newline is reported at the record\'s first line', async () => {
    const t = parseCsvText('a,note,y\n1,"two\nlines",0\n,"x",1\n3,"three\nmore\nlines",\n', 'q.csv');
    expect(t.lines).toEqual([2, 4, 5]);
    const err = await failure(() => tabularFromCsv(t, { target: 'y' }));
    expect(err.message).toContain('line 4, column "a": missing value');
    expect(err.message).toContain('line 5, column "y": missing value');
  });

  it('counts skipped blank lines before a record', () => {
    const t = parseCsvText('a,y\n\n1,0\n\n\n2,"1\n"\n3,1\n', 'b.csv');
    expect(t.lines).toEqual([3, 6, 8]);
  });

  it('an unclosed quote is reported where it opens, not at the end of the file', async () => {
    const rows = Array.from({ length: 198 }, (_, i) => `${i},${i % 2}`);
    rows[3] = '3,"1'; // file line 6 (header is line 1, a blank line 2 is skipped)
    const err = await failure(() => parseCsvText(`a,y\n\n${rows.join('\n')}\n`, 'u.csv'));
    expect(err.code).toBe('CSV_INVALID');
    expect(err.message).toMatch(/quoted field opened on line 6 is never closed/);
    expect(err.message).not.toMatch(/line 20\d/);
  });

  it('an unclosed quote after a closed multi-line field names the quote\'s line and the record\'s', async () => {
    const err = await failure(() => parseCsvText('a,b,c\n1,"ok\nfine",3\n4,"x\ny",5,"open\n6,7,8\n', 'm.csv'));
    expect(err.message).toMatch(/opened on line 5 \(in the record that starts on line 4\)/);
  });

  it('a ragged record after a multi-line one is reported at its own first line', async () => {
    const err = await failure(() => parseCsvText('a,b\n1,"x\ny"\n3\n4,5\n', 'r.csv'));
    expect(err.message).toMatch(/on line 4/);
  });
});

describe('text encodings (item 17)', () => {
  const latin1 = (text: string) => Buffer.from(text, 'latin1');

  it('refuses Latin-1 bytes read as UTF-8 with the line and byte offset, instead of U+FFFD labels', async () => {
    const file = path.join(dir, 'latin1.csv');
    await writeFile(file, latin1('x,label\n1,cafe\n2,the\n3,café\n4,cafe\n'));
    const err = await failure(readCsv(file));
    expect(err.code).toBe('CSV_ENCODING');
    expect(err.message).toContain('byte 0xe9 at line 4 (byte offset 26)');
    expect(err.message).toMatch(/--encoding latin1/);
    expect(err.details).toEqual({ line: 4, offset: 26 });
    const t = await readCsv(file, { encoding: 'latin1' });
    expect(t.rows[2]).toEqual(['3', 'café']);
    expect((await readCsv(file, { encoding: 'windows-1252' })).rows[2]).toEqual(['3', 'café']);
  });

  it('decodes UTF-16 with --encoding and points at it when the file starts with its byte-order mark', async () => {
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('x,label\n1,naïve\n', 'utf16le')]);
    expect((await failure(() => decodeCsv('w.csv', utf16))).message).toMatch(/UTF-16LE byte-order mark: pass --encoding utf-16le/);
    expect(parseCsvText(decodeCsv('w.csv', utf16, 'utf-16le'), 'w.csv').rows[0]).toEqual(['1', 'naïve']);
    expect((await failure(() => decodeCsv('w.csv', utf16, 'klingon'))).code).toBe('OPTION_INVALID');
  });

  it('finds the first invalid byte: overlong forms, surrogates, truncation and stray continuation bytes', () => {
    const at = (...bytes: number[]) => invalidUtf8Offset(Uint8Array.from(bytes));
    expect(at(0x61, ...Buffer.from('é€😀'))).toBe(-1);
    expect(at(0x61, 0xc0, 0xaf)).toBe(1); // overlong '/'
    expect(at(0xe0, 0x80, 0xaf)).toBe(0); // overlong 3-byte
    expect(at(0x61, 0x62, 0xed, 0xa0, 0x80)).toBe(2); // UTF-16 surrogate
    expect(at(0xf4, 0x90, 0x80, 0x80)).toBe(0); // above U+10FFFF
    expect(at(0x61, 0xe2, 0x82)).toBe(1); // truncated at the end
    expect(at(0x80)).toBe(0);
  });

  it('train --encoding: fails without it (CSV_ENCODING, exit 1) and keeps the accents with it', async () => {
    const file = path.join(dir, 'labels-latin1.csv');
    await writeFile(file, latin1(table(['crème', 'brûlée'])));
    const bad = await cli(['train', '--model', 'logistic', '--data', file, '--target', 'label', '--name', 'enc-bad']);
    expect(bad.code).toBe(1);
    expect(bad.json.error.code).toBe('CSV_ENCODING');
    const ok = await cli(['train', '--model', 'logistic', '--data', file, '--target', 'label', '--name', 'enc-ok', '--encoding', 'latin1']);
    expect(ok.code).toBe(0);
    const dirOut = ok.json.package.dir as string;
    expect((await loadPackage(dirOut)).manifest.labels).toEqual(['brûlée', 'crème']);
    const ev = await cli(['evaluate', dirOut, '--data', file, '--encoding', 'latin1', '--split', 'all']);
    expect(ev.code).toBe(0);
    const evBad = await cli(['evaluate', dirOut, '--data', file, '--split', 'all']);
    expect(evBad.json.error.code).toBe('CSV_ENCODING');
  });
});

describe('memory guard (item 18)', () => {
  let wide: string;
  beforeAll(async () => {
    // A header with 1,000,000 columns and 20 rows: about 48 MB on disk, over 1 GB once parsed and trained.
    wide = path.join(dir, 'wide.csv');
    const cols = 1_000_000;
    const header = Array.from({ length: cols }, (_, i) => `c${i}`).join(',');
    const line = '0,'.repeat(cols - 1) + '1';
    await writeFile(wide, [header, ...Array.from({ length: 20 }, () => line)].join('\n') + '\n');
  });

  it('refuses a 1,000,000-column file before parsing it, with the estimate in the message', async () => {
    const heap0 = process.memoryUsage().heapUsed;
    const err = await failure(readCsv(wide, { maxMemory: 512 * 1024 ** 2 }));
    expect(err.code).toBe('INPUT_TOO_LARGE');
    expect(err.message).toMatch(/1,000,000 columns x 20 rows\) would need about [\d.]+ GiB of memory to load and train, over the limit of 512\.0 MiB/);
    expect(err.message).toMatch(/--drop-columns/);
    const { estimateBytes } = err.details as { estimateBytes: number };
    expect(estimateBytes).toBeGreaterThan(1024 ** 3);
    // Nothing the size of the parsed table (tens of millions of cells) was built.
    expect(process.memoryUsage().heapUsed - heap0).toBeLessThan(200 * 1024 ** 2);
  });

  it('refuses a file whose bytes alone exceed the limit without reading it', async () => {
    const err = await failure(readCsv(wide, { maxMemory: 16 * 1024 ** 2 }));
    expect(err.code).toBe('INPUT_TOO_LARGE');
    expect(err.message).toMatch(/CSV file .*wide\.csv \([\d.]+ MiB\) would need about/);
  });

  it('refuses a one-hot encoding that explodes the width, naming the column', async () => {
    const rows = Array.from({ length: 3000 }, (_, i) => `${i},id${i},${i % 2}`);
    const t = parseCsvText(`x,user,y\n${rows.join('\n')}\n`, 'ids.csv');
    const err = await failure(() => tabularFromCsv(t, { target: 'y', maxMemory: 64 * 1024 ** 2 }));
    expect(err.code).toBe('INPUT_TOO_LARGE');
    expect(err.message).toMatch(/3,000 rows x 3,001 encoded features/);
    expect(err.message).toMatch(/categorical column "user" alone becomes 3000 one-hot features/);
    expect(tabularFromCsv(t, { target: 'y', ignore: ['user'], maxMemory: 64 * 1024 ** 2 }).features).toEqual(['x']);
  });

  it('train --max-memory and MLCTL_MAX_MEMORY: exit 1 with INPUT_TOO_LARGE in --json; a small file still trains', async () => {
    const flag = await cli(['train', '--model', 'logistic', '--data', wide, '--target', 'c0', '--max-memory', '256mb']);
    expect(flag.code).toBe(1);
    expect(flag.json.error.code).toBe('INPUT_TOO_LARGE');
    // The default (1gb) refuses it too: a million columns is never what someone meant to train on.
    const byDefault = await cli(['train', '--model', 'logistic', '--data', wide, '--target', 'c0']);
    expect(byDefault.json.error.code).toBe('INPUT_TOO_LARGE');
    const env = await cli(['train', '--model', 'logistic', '--data', wide, '--target', 'c0'], { MLCTL_MAX_MEMORY: '300mb' });
    expect(env.json.error.code).toBe('INPUT_TOO_LARGE');
    expect(env.json.error.message).toMatch(/limit of 300\.0 MiB/);
    const small = path.join(dir, 'small.csv');
    await writeFile(small, table(['a', 'b']));
    expect((await cli(['train', '--model', 'logistic', '--data', small, '--target', 'label', '--name', 'small', '--max-memory', '64mb'])).code).toBe(0);
  });
});
