// Every relative link in README.md and docs/*.md resolves: the file exists, and a #fragment names a heading of the
// page it points to (GitHub's anchor rules). Every docs page is reachable from the README. A broken link is a bug.
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { githubAnchor } from '../scripts/readme-reference.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pages = ['README.md', ...readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];

/** The page's text outside fenced code blocks and inline code spans (neither holds links nor headings). */
function prose(text: string): string[] {
  const out: string[] = [];
  let fence: string | null = null;
  for (const line of text.split('\n')) {
    const m = /^\s*(```+|~~~+)/.exec(line);
    if (m) {
      if (fence === null) fence = m[1]!;
      else if (m[1]!.startsWith(fence)) fence = null;
      out.push('');
      continue;
    }
    out.push(fence === null ? line.replace(/(`+)[^`]*?\1/g, '') : '');
  }
  return out;
}

/** A page's heading anchors (githubAnchor; a repeated heading gets -1, -2 …) and its <a name|id> anchors. */
function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let fence: string | null = null;
  for (const line of text.split('\n')) {
    const f = /^\s*(```+|~~~+)/.exec(line);
    if (f) {
      if (fence === null) fence = f[1]!;
      else if (f[1]!.startsWith(fence)) fence = null;
      continue;
    }
    const h = fence === null ? /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line) : null;
    if (!h) continue;
    const base = githubAnchor(h[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  for (const a of text.matchAll(/<a\s+(?:name|id)="([^"]+)"/g)) out.add(a[1]!);
  return out;
}

/** Relative link targets on a page: [text](target), ![alt](target), and reference definitions [id]: target. */
function links(text: string): Array<{ line: number; target: string }> {
  const out: Array<{ line: number; target: string }> = [];
  prose(text).forEach((l, i) => {
    for (const m of l.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) out.push({ line: i + 1, target: m[1]! });
    const def = /^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(\s|$)/.exec(l);
    if (def) out.push({ line: i + 1, target: def[1]! });
  });
  return out.filter((l) => !/^[a-z][a-z0-9+.-]*:/i.test(l.target));
}

describe('docs links', () => {
  it('the anchor rules match GitHub on the headings these pages use', () => {
    const a = anchors('# mlctl\n## `mlctl evaluate <models...>`\n## Smart camera (`mlctl watch`)\n## Exit codes\n## Exit codes\n```sh\n# not a heading\n```\n## mobilenet_v2 & co.');
    expect([...a]).toEqual(['mlctl', 'mlctl-evaluate-models', 'smart-camera-mlctl-watch', 'exit-codes', 'exit-codes-1', 'mobilenet_v2--co']);
  });

  it.each(pages)('%s: every relative link resolves to a file and, with #anchor, to a heading', (page) => {
    const text = readFileSync(path.join(root, page), 'utf8');
    const broken: string[] = [];
    for (const { line, target } of links(text)) {
      const [file, fragment] = target.split('#', 2) as [string, string | undefined];
      const resolved = file === '' ? path.join(root, page) : path.resolve(path.dirname(path.join(root, page)), decodeURIComponent(file));
      if (!resolved.startsWith(root + path.sep)) broken.push(`${page}:${line}: ${target} leaves the repository`);
      else if (!existsSync(resolved)) broken.push(`${page}:${line}: ${target} — no such file`);
      else if (fragment !== undefined) {
        if (statSync(resolved).isDirectory() || !resolved.endsWith('.md')) broken.push(`${page}:${line}: ${target} — an anchor into a file that is not a page`);
        else if (!anchors(readFileSync(resolved, 'utf8')).has(decodeURIComponent(fragment))) broken.push(`${page}:${line}: ${target} — no heading #${fragment} in ${path.relative(root, resolved)}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('the README links every docs page', () => {
    const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
    const linked = new Set(links(readme).map((l) => path.normalize(l.target.split('#')[0]!)));
    expect(pages.filter((p) => p !== 'README.md' && !linked.has(path.normalize(p)))).toEqual([]);
  });
});
