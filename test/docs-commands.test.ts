// Every `mlctl …` command line in the docs' shell blocks (README.md, docs/*.md) names a command that exists and only
// options that command takes: an option renamed or removed in the tables (src/cli/commands/) fails here instead of
// leaving a walkthrough that no longer runs.
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { COMMANDS } from '../src/cli/commands/index.js';
import { COMMON_OPTIONS } from '../src/cli/options.js';
import type { AnyCommand } from '../src/cli/spec.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pages = ['README.md', ...readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];

/** The flags of an option table, e.g. '-d, --data <dir>' → ['-d', '--data']. */
const flagsOf = (options: ReadonlyArray<{ flags: string }>) => options.flatMap((o) => o.flags.split(/[ ,|]+/).filter((f) => f.startsWith('-')));
const ALWAYS = new Set([...flagsOf(COMMON_OPTIONS), '-h', '--help', '-V', '--version']);

/** Shell lines of a page's ```sh / ```bash blocks, continuation lines joined. */
function shellLines(text: string): Array<{ line: number; text: string }> {
  const out: Array<{ line: number; text: string }> = [];
  let inShell = false;
  let pending: { line: number; text: string } | null = null;
  text.split('\n').forEach((raw, i) => {
    const fence = /^\s*```(\w*)/.exec(raw);
    if (fence) {
      inShell = !inShell && /^(sh|bash|shell|console)$/.test(fence[1]!);
      return;
    }
    if (!inShell) return;
    const joined: { line: number; text: string } = pending ? { line: pending.line, text: `${pending.text} ${raw.trim()}` } : { line: i + 1, text: raw };
    if (/\\\s*$/.test(raw)) pending = { line: joined.line, text: joined.text.replace(/\\\s*$/, '') };
    else {
      pending = null;
      out.push(joined);
    }
  });
  return out;
}

/** Words of a shell command line, quotes removed; a comment (an unquoted # after a blank) ends it. */
function words(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote: string | null = null;
  let started = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = null;
      else cur += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      started = true;
    } else if (/\s/.test(c)) {
      if (started) out.push(cur);
      cur = '';
      started = false;
    } else if (c === '#' && !started) break;
    else if ('|;&'.includes(c)) {
      if (started) out.push(cur);
      cur = '';
      started = false;
      out.push(c);
    } else {
      cur += c;
      started = true;
    }
  }
  if (started) out.push(cur);
  return out;
}

/** The mlctl invocations of a line: each as the words after `mlctl` up to the next |, ;, & or &&. */
function invocations(line: string): string[][] {
  const out: string[][] = [];
  let cmd: string[] = [];
  for (const w of [...words(line), ';']) {
    if (w === '|' || w === ';' || w === '&') {
      const i = cmd.findIndex((x) => !/^[A-Z_][A-Z0-9_]*=/.test(x));
      if (i >= 0 && cmd[i] === 'mlctl') out.push(cmd.slice(i + 1));
      cmd = [];
    } else cmd.push(w);
  }
  return out;
}

/** What a command line is wrong about, or nothing. */
function check(argv: string[]): string | null {
  let table: readonly AnyCommand[] = COMMANDS;
  let spec: AnyCommand | undefined;
  let i = 0;
  const name: string[] = [];
  while (i < argv.length && !argv[i]!.startsWith('-')) {
    const found = table.find((c) => c.name === argv[i] || c.aliases?.includes(argv[i]!));
    if (!found) return spec ? null : `no command ${JSON.stringify(argv[i])}`;
    spec = found;
    name.push(found.name);
    i++;
    if (!found.subcommands?.length) break;
    table = found.subcommands;
  }
  if (!spec) return argv.length && !ALWAYS.has(argv[0]!) ? `no command in ${JSON.stringify(argv.join(' '))}` : null;
  if (spec.subcommands?.length && !argv.slice(i).some((a) => ALWAYS.has(a))) return `mlctl ${name.join(' ')} needs a subcommand`;
  const allowed = new Set([...ALWAYS, ...flagsOf(spec.options)]);
  const unknown = argv.slice(i).filter((a) => /^--?[a-zA-Z]/.test(a)).map((a) => a.split('=')[0]!).filter((f) => !allowed.has(f));
  return unknown.length ? `mlctl ${name.join(' ')} has no ${unknown.join(', ')}` : null;
}

describe('docs command lines', () => {
  it('the checker sees what is wrong', () => {
    expect(check(['train', '--data', 'd', '--epochs', '3', '--json'])).toBeNull();
    expect(check(['train', '--dataa', 'd'])).toBe('mlctl train has no --dataa');
    expect(check(['models', 'tag', 'a@1', 'prod', '--note', 'x'])).toBeNull();
    expect(check(['models'])).toBe('mlctl models needs a subcommand');
    expect(check(['trian'])).toBe('no command "trian"');
    expect(invocations("MLCTL_X=1 mlctl serve m --port 5 & # comment --nope")).toEqual([['serve', 'm', '--port', '5']]);
    expect(invocations('find . | mlctl predict m - --out p.csv && mlctl models ls')).toEqual([['predict', 'm', '-', '--out', 'p.csv'], ['models', 'ls']]);
  });

  it.each(pages)('%s: every mlctl command and option in its shell blocks exists', (page) => {
    const problems: string[] = [];
    for (const { line, text } of shellLines(readFileSync(path.join(root, page), 'utf8')))
      for (const argv of invocations(text)) {
        const wrong = check(argv);
        if (wrong) problems.push(`${page}:${line}: ${wrong}`);
      }
    expect(problems).toEqual([]);
  });
});
