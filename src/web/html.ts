// Self-contained HTML pages (evaluation report, training history): one file that opens from disk with no network —
// inline CSS, inline SVG figures, images as data: URIs — and a Content-Security-Policy that forbids scripts and
// any fetch, so a report never phones home or runs code.
import { escapeXml } from './charts.js';

export const esc = escapeXml;

export interface HtmlTable {
  head: readonly string[];
  rows: ReadonlyArray<readonly string[]>;
  align?: ReadonlyArray<'left' | 'right'>;
}

/** A table; `cellClass(r, c)` may add a class to a body cell (deltas coloured good/bad). */
export function table(t: HtmlTable, o: { caption?: string; cls?: string; cellClass?: (row: number, col: number) => string | undefined } = {}): string {
  const al = (i: number) => (t.align?.[i] === 'right' ? ' class="num"' : '');
  const head = `<tr>${t.head.map((h, i) => `<th scope="col"${al(i)}>${esc(h)}</th>`).join('')}</tr>`;
  const body = t.rows
    .map((r, ri) => `<tr>${r.map((c, ci) => {
      const extra = o.cellClass?.(ri, ci);
      const cls = [t.align?.[ci] === 'right' ? 'num' : '', extra ?? ''].filter(Boolean).join(' ');
      return `<td${cls ? ` class="${cls}"` : ''}>${esc(c)}</td>`;
    }).join('')}</tr>`)
    .join('\n');
  // Wide tables scroll inside their own box on narrow screens instead of widening the page.
  return `<div class="tw"><table${o.cls ? ` class="${o.cls}"` : ''}>${o.caption ? `<caption>${esc(o.caption)}</caption>` : ''}<thead>${head}</thead><tbody>\n${body}\n</tbody></table></div>`;
}

/** A headline figure: big value, small label. */
export function card(label: string, value: string, note?: string, cls?: string): string {
  return `<div class="card${cls ? ` ${cls}` : ''}"><div class="value">${esc(value)}</div><div class="label">${esc(label)}</div>${note ? `<div class="note">${esc(note)}</div>` : ''}</div>`;
}

export function section(id: string, title: string, body: string, level: 2 | 3 = 2): string {
  return `<section id="${esc(id)}" class="s${level}"><h${level}>${esc(title)}</h${level}>\n${body}\n</section>`;
}

/** A figure wrapping inline SVG (trusted: built by web/charts.ts, every text escaped there). */
export function figure(svg: string, caption?: string): string {
  return `<figure>${svg}${caption ? `<figcaption>${esc(caption)}</figcaption>` : ''}</figure>`;
}

const CSS = `
:root{--fg:#1b1f24;--muted:#57606a;--line:#d0d7de;--bg:#ffffff;--soft:#f6f8fa;--good:#1a7f37;--bad:#cf222e;--accent:#0969da}
*{box-sizing:border-box}
body{margin:0;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--fg);background:var(--bg)}
header{padding:20px 28px;border-bottom:1px solid var(--line);background:var(--soft)}
header h1{margin:0 0 4px;font-size:22px}
header p{margin:2px 0;color:var(--muted)}
nav{padding:8px 28px;border-bottom:1px solid var(--line);font-size:13px}
nav a{margin-right:14px;color:var(--accent);text-decoration:none}
main{padding:8px 28px 40px;max-width:1280px}
h2{font-size:18px;margin:28px 0 10px;padding-bottom:4px;border-bottom:1px solid var(--line)}
h3{font-size:15px;margin:20px 0 8px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:8px 0 16px}
.card{border:1px solid var(--line);border-radius:8px;padding:10px 14px;min-width:130px;background:var(--bg)}
.card .value{font-size:22px;font-weight:600;font-variant-numeric:tabular-nums}
.card .label{color:var(--muted);font-size:12px}
.card .note{color:var(--muted);font-size:11px}
.card.fail{border-color:var(--bad)}
.tw{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:6px 0 14px;font-variant-numeric:tabular-nums}
caption{text-align:left;color:var(--muted);padding-bottom:4px}
th,td{border:1px solid var(--line);padding:4px 9px;text-align:left;vertical-align:top}
th{background:var(--soft);font-weight:600}
td.num,th.num{text-align:right}
td.good{color:var(--good);font-weight:600}
td.bad{color:var(--bad);font-weight:600}
.figs{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
figure{margin:0 0 12px;max-width:100%;overflow-x:auto}
figure svg{max-width:100%;height:auto;display:block}
figcaption{color:var(--muted);font-size:12px}
.gates li.pass::marker{content:"✔ ";color:var(--good)}
.gates li.fail::marker{content:"✘ ";color:var(--bad)}
.gates li.fail{color:var(--bad);font-weight:600}
.thumbs{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:12px;margin:8px 0}
.thumb{border:1px solid var(--line);border-radius:6px;padding:6px;font-size:12px;background:var(--bg)}
.thumb img{display:block;width:100%;height:auto;image-rendering:auto;border-radius:3px;background:var(--soft)}
.thumb .missing{display:flex;align-items:center;justify-content:center;height:96px;background:var(--soft);color:var(--muted)}
.thumb .t{color:var(--good)}
.thumb .p{color:var(--bad)}
.thumb .path{color:var(--muted);word-break:break-all}
.muted{color:var(--muted)}
code{background:var(--soft);padding:1px 4px;border-radius:3px}
footer{color:var(--muted);font-size:12px;padding:12px 28px;border-top:1px solid var(--line)}
@media (max-width:700px){main,header,nav,footer{padding-left:12px;padding-right:12px}.card{min-width:45%}}
@media print{nav{display:none}}
`;

/**
 * The page shell. The CSP allows only inline styles and data: images: no script runs, nothing is fetched, so the
 * file is safe to open from disk or attach to a CI run.
 */
export function htmlPage(o: { title: string; subtitle?: readonly string[]; nav?: ReadonlyArray<[id: string, label: string]>; body: string; footer?: string }): string {
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${esc(o.title)}</title>`,
    `<style>${CSS}</style>`,
    '</head>',
    '<body>',
    `<header><h1>${esc(o.title)}</h1>${(o.subtitle ?? []).map((s) => `<p>${esc(s)}</p>`).join('')}</header>`,
    o.nav && o.nav.length ? `<nav>${o.nav.map(([id, label]) => `<a href="#${esc(id)}">${esc(label)}</a>`).join('')}</nav>` : '',
    `<main>\n${o.body}\n</main>`,
    `<footer>${esc(o.footer ?? 'Generated by mlctl.')}</footer>`,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}
