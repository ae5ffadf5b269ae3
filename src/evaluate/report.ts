// `--report DIR`: report.json (the full result, as --json prints it), report.md (tables + embedded figures), the PNG
// figures and index.html (the self-contained page, report-html.ts), written into a temporary directory and swapped
// into place so a reader never sees half a report.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { replaceDirAtomic } from '../artifacts/atomic.js';
import { MlctlError } from '../errors.js';
import type { ReportSection } from '../tasks/index.js';
import { mdCode, mdText, renderMarkdown } from '../util/table.js';
import type { ComparisonRow } from './compare.js';
import type { EvaluationData } from '../data/evaluation.js';
import { comparisonRowsTable, summaryRows, taskOfResult, type EvaluationReport } from './format.js';
import type { GateCheck } from './gates.js';
import { reportHtml } from './report-html.js';
import type { EvaluationResult } from './run.js';

export type { EvaluationReport } from './format.js';

/** Image folders, CSV files (evaluate/tabular.ts, layout "csv") and detection datasets (layout coco/yolo/voc) report alike. */
export type ReportData = Omit<EvaluationData, 'layout' | 'plan' | 'samples'> & { layout: string; samples: readonly unknown[] };

export function buildReport(data: ReportData, results: Array<EvaluationResult<any>>, comparison: ComparisonRow[] | undefined, gates: GateCheck[]): EvaluationReport {
  return {
    data: { root: data.root, layout: data.layout, split: data.split, origin: data.origin, ...data.params, classes: data.classes, images: data.samples.length },
    results,
    ...(comparison ? { comparison } : {}),
    gates,
    gatesPassed: gates.every((g) => g.passed),
  };
}

/** File-name stem for one model's figures: none for a single model, "<i>-<name>-v<version>" when comparing. */
function stemFor(r: EvaluationResult, i: number, many: boolean): string {
  return many ? `-${i + 1}-${r.model.name.replace(/[^A-Za-z0-9._-]/g, '_')}-v${r.model.version}` : '';
}

async function assertReplaceable(dir: string): Promise<void> {
  const entries = await fs.readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    if (err.code === 'ENOTDIR') throw new MlctlError('OUTPUT_DIR_INVALID', [`--report ${dir} is a file; pass a folder path`]);
    throw err;
  });
  // Only an empty folder or an earlier report may be replaced: never wipe a folder of unrelated files.
  if (entries.length > 0 && !entries.includes('report.json')) {
    throw new MlctlError('OUTPUT_DIR_INVALID', [`--report ${dir} exists and is not an mlctl report folder (no report.json); choose a new or empty folder`]);
  }
}

/** Each model's task sections (tables, figures, galleries), in result order: what report.md and index.html show. */
export async function reportSections(report: EvaluationReport): Promise<ReportSection[][]> {
  const many = report.results.length > 1;
  return Promise.all(
    report.results.map(async (r, i) => (await taskOfResult(r).report.sections?.(r.metrics, { name: `${r.model.name} v${r.model.version}`, stem: stemFor(r, i, many), root: report.data.root })) ?? []),
  );
}

export function reportMarkdown(report: EvaluationReport, sections: ReportSection[][]): string {
  const d = report.data;
  const out: string[] = ['# mlctl evaluation report', ''];
  // Labels, paths and messages come from the data: every one goes through mdText/mdCode (no raw HTML or links).
  out.push(`Data: ${mdCode(d.root)} — ${mdText(d.split)} split (${mdText(d.origin)}; ${mdText(d.layout)} layout), ${d.images} ${d.layout === 'csv' ? 'rows' : 'images'}, classes: ${d.classes.map(mdText).join(', ')}.`, '');
  if (report.comparison && report.comparison.length > 1) {
    out.push(`## Comparison (deltas vs ${mdText(report.comparison[0]!.model)})`, '', renderMarkdown(comparisonRowsTable(report.comparison)), '');
  }
  if (report.gates.length > 0) {
    out.push('## Quality gates', '', ...report.gates.map((g) => `- ${g.passed ? '✅ pass' : '❌ **FAIL**'}: ${mdText(g.message)}`), '');
  }
  report.results.forEach((r, i) => {
    out.push(`## ${mdText(r.model.name)} v${r.model.version}`, '', `Package ${mdCode(r.model.dir)} (mlctl.json sha256 \`${r.model.manifestSha256.slice(0, 16)}…\`), engine ${mdText(r.engine.description)}.`, '');
    out.push(renderMarkdown(summaryRows(r)), '');
    for (const s of sections[i] ?? []) if (s.markdown) out.push(`### ${s.title}`, '', ...s.markdown, '');
    if (r.images.skipped > 0) {
      out.push('### Skipped images', '', `${r.images.skipped} unreadable image(s) were skipped${r.images.skippedFiles.length < r.images.skipped ? ` (first ${r.images.skippedFiles.length} listed)` : ''}:`, '');
      out.push(...r.images.skippedFiles.map((s) => `- ${mdCode(s.path)}: ${mdText(s.reason)}`), '');
    }
  });
  return out.join('\n');
}

/** Write the report folder; returns the files written (relative to dir). */
export async function writeReport(dir: string, report: EvaluationReport): Promise<string[]> {
  const target = path.resolve(dir);
  await assertReplaceable(target);
  const sections = await reportSections(report);
  const files: string[] = [];
  await replaceDirAtomic(target, async (tmp) => {
    for (const f of sections.flat().flatMap((s) => s.files ?? [])) {
      await fs.writeFile(path.join(tmp, f.name), f.data);
      files.push(f.name);
    }
    await fs.writeFile(path.join(tmp, 'report.md'), reportMarkdown(report, sections) + '\n');
    await fs.writeFile(path.join(tmp, 'index.html'), reportHtml(report, sections));
    await fs.writeFile(path.join(tmp, 'report.json'), JSON.stringify(report, null, 2) + '\n');
    files.push('report.md', 'index.html', 'report.json');
  });
  return files;
}
