// A typed reader over a parsed YAML document that keeps every value's line and column, so a bad watch config or
// rules file fails with "watch.yaml:12:5: rules[0].min_score: …" (exit 2). Values set from command-line flags
// have no position and name the flag instead.
import path from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node, type Pair } from 'yaml';
import { MlctlError } from '../../errors.js';
import { parseDuration, parseSize } from '../../util/units.js';

export interface Origin {
  /** File name shown in errors (or "command line"). */
  file: string;
  lineCounter?: LineCounter;
}

/** A file name for messages: relative when under the working directory, absolute otherwise. */
export function displayPath(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : path.resolve(file);
}

export function configError(where: string, message: string): MlctlError {
  return new MlctlError('WATCH_CONFIG_INVALID', [where, message]);
}

/** Parse YAML text; syntax errors become WATCH_CONFIG_INVALID with the position of the first one. */
export function parseYaml(text: string, file: string): { doc: Document; origin: Origin } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const origin = { file, lineCounter };
  const first = doc.errors[0];
  if (first) {
    const pos = lineCounter.linePos(first.pos[0]);
    throw configError(`${file}:${pos.line}:${pos.col}`, `YAML syntax error: ${first.message.split('\n')[0]}`);
  }
  return { doc, origin };
}

/** Closest of `options` to `word` (edit distance ≤ 2), for "did you mean" hints. */
export function suggest(word: string, options: readonly string[]): string | undefined {
  const dist = (a: string, b: string) => {
    const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
    for (let j = 1; j <= b.length; j++) d[0]![j] = j;
    for (let i = 1; i <= a.length; i++) for (let j = 1; j <= b.length; j++) d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    return d[a.length]![b.length]!;
  };
  let best: string | undefined;
  let bestD = 3;
  for (const o of options) {
    const dd = dist(word, o);
    if (dd < bestD) [best, bestD] = [o, dd];
  }
  return best;
}

/** One value in the document: its node (possibly absent), its path for messages and where it came from. */
export class Field {
  constructor(
    readonly origin: Origin,
    readonly node: Node | null | undefined,
    readonly path: string,
    /** The key node, used for the position of an absent or null value. */
    readonly anchor?: Node | null,
  ) {}

  get present(): boolean {
    return this.node !== undefined && !(isScalar(this.node) && this.node.value === null);
  }

  where(): string {
    const range = this.node?.range ?? this.anchor?.range;
    // Nodes without a range were made from command-line flags, not read from the file.
    if (!range || !this.origin.lineCounter) return 'command line';
    const { line, col } = this.origin.lineCounter.linePos(range[0]);
    return `${this.origin.file}:${line}:${col}`;
  }

  fail(message: string): never {
    throw configError(this.where(), `${this.path}: ${message}`);
  }

  private scalar(): unknown {
    if (!isScalar(this.node)) this.fail(`expected a single value, got a ${isSeq(this.node) ? 'list' : isMap(this.node) ? 'mapping' : 'nothing'}`);
    return (this.node as { value: unknown }).value;
  }

  string(opts: { pattern?: RegExp; hint?: string } = {}): string {
    const v = this.scalar();
    if (typeof v !== 'string' && typeof v !== 'number') this.fail(`expected text, got ${JSON.stringify(v)}`);
    const s = expandEnv(String(v), (name) => this.fail(`environment variable ${name} is not set (referenced as \${${name}})`));
    if (!s.trim()) this.fail('must not be empty');
    if (opts.pattern && !opts.pattern.test(s)) this.fail(`${JSON.stringify(s)} is not valid${opts.hint ? `: ${opts.hint}` : ''}`);
    return s;
  }

  number(opts: { min?: number; max?: number; integer?: boolean } = {}): number {
    const v = this.scalar();
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(`expected a number, got ${JSON.stringify(v)}`);
    const n = v as number;
    if (opts.integer && !Number.isInteger(n)) this.fail(`expected a whole number, got ${n}`);
    if (opts.min !== undefined && n < opts.min) this.fail(`must be at least ${opts.min}, got ${n}`);
    if (opts.max !== undefined && n > opts.max) this.fail(`must be at most ${opts.max}, got ${n}`);
    return n;
  }

  boolean(): boolean {
    const v = this.scalar();
    if (typeof v !== 'boolean') this.fail(`expected true or false, got ${JSON.stringify(v)}`);
    return v as boolean;
  }

  duration(): number {
    const v = this.scalar();
    if ((typeof v !== 'string' && typeof v !== 'number') || (typeof v === 'number' && (!Number.isFinite(v) || v < 0))) this.fail(`${JSON.stringify(v)} is not a duration: use e.g. 500ms, 10s, 5m, 2h or 7d (a bare number is seconds)`);
    return this.convert(() => parseDuration(v as string | number, 'the value'));
  }

  size(): number {
    const v = this.scalar();
    if ((typeof v !== 'string' && typeof v !== 'number') || (typeof v === 'number' && !Number.isInteger(v))) this.fail(`${JSON.stringify(v)} is not a size: use e.g. 512kb, 10mb or 1gb`);
    return this.convert(() => parseSize(v as string | number, 'the value'));
  }

  /** Run a shared parser (util/units) and give its complaint this value's position. */
  private convert<T>(parse: () => T): T {
    try {
      return parse();
    } catch (err) {
      return this.fail((err as Error).message.replace(/^the value /, ''));
    }
  }

  choice<T extends string>(options: readonly T[]): T {
    const s = this.string();
    if (!options.includes(s as T)) {
      const near = suggest(s, options);
      this.fail(`${JSON.stringify(s)} is not one of ${options.join(', ')}${near ? ` (did you mean ${near}?)` : ''}`);
    }
    return s as T;
  }

  list(): Field[] {
    if (!isSeq(this.node)) this.fail('expected a list');
    return (this.node as { items: Node[] }).items.map((item, i) => new Field(this.origin, item, `${this.path}[${i}]`));
  }

  /** A list of strings, or one string taken as a one-item list. */
  strings(): string[] {
    return isSeq(this.node) ? this.list().map((f) => f.string()) : [this.string()];
  }

  map(): MapReader {
    if (!isMap(this.node)) this.fail('expected a mapping of key: value');
    return new MapReader(this.origin, this.node as { items: Pair[] }, this.path, this.node as Node);
  }

  isMap(): boolean {
    return isMap(this.node);
  }

  isList(): boolean {
    return isSeq(this.node);
  }
}

/** The keys of a mapping; done() rejects keys nobody asked for (typos) with a suggestion. */
export class MapReader {
  private readonly used = new Set<string>();

  constructor(
    readonly origin: Origin,
    private readonly node: { items: Pair[] },
    readonly path: string,
    private readonly self: Node,
  ) {}

  private pair(key: string): Pair | undefined {
    return this.node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === key);
  }

  has(key: string): boolean {
    const p = this.pair(key);
    return p !== undefined && !(isScalar(p.value) && p.value.value === null) && p.value !== null;
  }

  get(key: string): Field {
    this.used.add(key);
    const p = this.pair(key);
    const child = `${this.path ? `${this.path}.` : ''}${key}`;
    return new Field(this.origin, (p?.value as Node | null | undefined) ?? undefined, child, (p?.key as Node | undefined) ?? this.self);
  }

  /** Value of an optional key through `read`, or `fallback` when absent. */
  opt<T>(key: string, read: (f: Field) => T, fallback: T): T {
    const f = this.get(key);
    return f.present ? read(f) : fallback;
  }

  req<T>(key: string, read: (f: Field) => T): T {
    const f = this.get(key);
    if (!f.present) new Field(this.origin, this.self, this.path).fail(`"${key}" is required`);
    return read(f);
  }

  keys(): string[] {
    return this.node.items.map((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)));
  }

  done(): void {
    for (const p of this.node.items) {
      const key = isScalar(p.key) ? String(p.key.value) : String(p.key);
      if (this.used.has(key)) continue;
      const near = suggest(key, [...this.used]);
      new Field(this.origin, p.key as Node, `${this.path ? `${this.path}.` : ''}${key}`).fail(`unknown key${near ? ` (did you mean ${near}?)` : ''}; known keys: ${[...this.used].join(', ')}`);
    }
  }
}

/** ${NAME} in a string is replaced by the environment variable (secrets stay out of config files); $${ is a literal ${. */
export function expandEnv(s: string, missing: (name: string) => never): string {
  return s.replace(/\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (all, escape: string, name: string) => {
    if (escape) return all.slice(1);
    const v = process.env[name];
    if (v === undefined) missing(name);
    return v!;
  });
}
