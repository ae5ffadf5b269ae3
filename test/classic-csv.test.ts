// CSV reading for the classic models: header, numeric and one-hot columns, and bad cells reported by line and column.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodedFeatureNames, encodeObjects, parseCsvText, readCsv, tabularFromCsv } from '../src/data/csv.js';
import { MlctlError } from '../src/errors.js';
import { tempDir } from './helpers/fixtures.js';

function csvError(fn: () => unknown): MlctlError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(MlctlError);
    return err as MlctlError;
  }
  throw new Error('expected an MlctlError');
}

const numericRows = (n: number) => Array.from({ length: n }, (_, i) => `${i},${i * 2},${i % 2 ? 'red' : 'blue'},${i % 3}`).join('\n');

describe('CSV tabular data', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => ({ dir, cleanup } = await tempDir('mlctl-csv-')));
  afterAll(() => cleanup());

  it('encodes numeric columns as-is and categorical columns one-hot, in header order', () => {
    const t = parseCsvText('age,city,income,label\n30,paris,10.5,a\n40,oslo,20,b\n50,paris,-3e2,a\n', 'x.csv');
    const d = tabularFromCsv(t, { target: 'label' });
    expect(d.features).toEqual(['age', 'city=oslo', 'city=paris', 'income']);
    expect(Array.from(d.x)).toEqual([30, 0, 1, 10.5, 40, 1, 0, 20, 50, 0, 1, -300]);
    expect(d.targetValues).toEqual(['a', 'b', 'a']);
    expect(encodedFeatureNames(d.encoding)).toEqual(d.features);
  });

  it('reports every missing value by line and column, and --missing drop skips those rows', () => {
    const text = `a,b,c,y\n1,2,x,0\n3,,x,1\n\n5,6,x,NA\n7,8,,1\n`;
    const t = parseCsvText(text, 'm.csv');
    const err = csvError(() => tabularFromCsv(t, { target: 'y' }));
    expect(err.code).toBe('CSV_INVALID');
    expect(err.message).toContain('line 3, column "b": missing value');
    expect(err.message).toContain('line 5, column "y": missing value');
    expect(err.message).toContain('line 6, column "c": missing value');
    expect(err.message).toMatch(/--missing drop/);
    const dropped = tabularFromCsv(t, { target: 'y', missing: 'drop' });
    expect(dropped.rows).toBe(1);
    expect(dropped.dropped).toBe(3);
  });

  it('reports non-numeric cells in a numeric column by line and column, and --categorical accepts them', () => {
    const text = `a,b,color,y\n${numericRows(20)}\n20,oops,red,1\n`;
    const t = parseCsvText(text, 'n.csv');
    const err = csvError(() => tabularFromCsv(t, { target: 'y' }));
    expect(err.message).toContain('line 22, column "b": not a number ("oops")');
    expect(err.message).toMatch(/--categorical/);
    const asCats = tabularFromCsv(t, { target: 'y', categorical: ['b'] });
    expect(asCats.features).toContain('b=oops');
  });

  it('names a missing target column, ragged rows and empty files', async () => {
    const t = parseCsvText('a,b\n1,2\n', 't.csv');
    expect(csvError(() => tabularFromCsv(t, { target: 'price' })).message).toMatch(/no target column "price" \(columns: a, b\)/);
    expect(csvError(() => parseCsvText('a,b\n1,2\n3\n', 'r.csv')).message).toMatch(/line 3/);
    expect(csvError(() => parseCsvText('', 'e.csv')).message).toMatch(/empty/);
    expect(csvError(() => parseCsvText('a,a\n1,2\n', 'd.csv')).message).toMatch(/column "a" twice/);
    const missingFile = path.join(dir, 'nope.csv');
    await expect(readCsv(missingFile)).rejects.toThrow(/does not exist/);
  });

  it('regression targets must be numbers', () => {
    const t = parseCsvText('a,y\n1,2\n2,three\n', 'y.csv');
    expect(csvError(() => tabularFromCsv(t, { target: 'y', numericTarget: true })).message).toContain('line 3, column "y": not a number ("three")');
  });

  it('reads semicolon-separated files, quoted fields and a BOM from disk', async () => {
    const file = path.join(dir, 'semi.csv');
    await writeFile(file, '\uFEFFname;x;y\n"Smith; J";1,5;0\n"Doe";2;1\n');
    const t = await readCsv(file);
    expect(t.header).toEqual(['name', 'x', 'y']);
    const d = tabularFromCsv(t, { target: 'y', ignore: ['name'], categorical: [] , missing: 'error' });
    expect(d.features[0]).toBe('x=1,5');
  });

  it('applies a fitted encoding to JSON rows and rejects unknown categories and bad values by row and column', () => {
    const t = parseCsvText('age,city,y\n30,paris,a\n40,oslo,b\n', 'x.csv');
    const { encoding } = tabularFromCsv(t, { target: 'y' });
    expect(Array.from(encodeObjects([{ age: 35, city: 'oslo' }, { age: '41', city: 'paris' }], encoding))).toEqual([35, 1, 0, 41, 0, 1]);
    expect(() => encodeObjects([{ age: 1, city: 'rome' }], encoding, 'm')).toThrow(/row 0, column "city": unknown category "rome"/);
    expect(() => encodeObjects([{ age: 1, city: 'oslo' }, { age: 'x', city: 'oslo' }], encoding, 'm')).toThrow(/row 1, column "age": "x" is not a number/);
    expect(() => encodeObjects([{ city: 'oslo' }], encoding, 'm')).toThrow(/row 0 has no value for column "age"/);
  });
});
