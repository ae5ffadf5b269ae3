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

const mdCell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function renderMarkdown(t: Rows): string {
  const sep = t.head.map((_, i) => (t.align?.[i] === 'right' ? '---:' : '---'));
  return [t.head, sep, ...t.rows].map((r) => `| ${r.map((c, i) => (r === sep ? c : mdCell(c ?? ''))).join(' | ')} |`).join('\n');
}
