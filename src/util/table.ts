// One table shape for reports, rendered for the terminal (cli-table3) and for Markdown from the same rows, so both
// always show the same figures; plus the number formats report cells use.
import Table from 'cli-table3';

export type Rows = { head: string[]; rows: string[][]; align?: Array<'left' | 'right'> };

export const f3 = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : '—');
export const f4 = (x: number) => (Number.isFinite(x) ? x.toFixed(4) : '—');
/** Milliseconds with as many decimals as they deserve. */
export const ms = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

export function renderTable(t: Rows): string {
  // No colours in tables: output is often piped into CI logs and diffed.
  const table = new Table({ head: t.head, style: { head: [], border: [], compact: true }, ...(t.align ? { colAligns: t.align } : {}) });
  for (const row of t.rows) table.push(row);
  return table.toString();
}

/**
 * Text from the data (class labels, file names, messages) as inert Markdown: HTML characters as entities (a label
 * like `<img src=x onerror=…>` stays text in any renderer), Markdown punctuation backslash-escaped (no links,
 * emphasis or table breaks), one line.
 */
export function mdText(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/[\\`*_[\]|~]/g, (c) => `\\${c}`)
    .replace(/\r?\n|\r/g, ' ');
}

/** Text as a Markdown code span whatever backticks it holds (CommonMark: a fence longer than any run inside). */
export function mdCode(s: string): string {
  const line = s.replace(/\r?\n|\r/g, ' ');
  const fence = '`'.repeat(Math.max(0, ...[...line.matchAll(/`+/g)].map((m) => m[0].length)) + 1);
  const pad = line.startsWith('`') || line.endsWith('`') ? ' ' : '';
  return `${fence}${pad}${line}${pad}${fence}`;
}

/** Every Markdown table cell is text from the data or a figure: inert either way. */
const mdCell = mdText;

export function renderMarkdown(t: Rows): string {
  const sep = t.head.map((_, i) => (t.align?.[i] === 'right' ? '---:' : '---'));
  return [t.head, sep, ...t.rows].map((r) => `| ${r.map((c, i) => (r === sep ? c : mdCell(c ?? ''))).join(' | ')} |`).join('\n');
}
