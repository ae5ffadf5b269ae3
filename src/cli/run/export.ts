// Runs `mlctl export` (loaded on demand): calls src/export and lists what was written.
import { exportModel } from '../../export/index.js';
import type { ExportContext } from '../commands/export.js';
import { startBackend } from '../context.js';
import { packageAccessFrom } from './package-access.js';
import type { CommandResult } from '../spec.js';

/** One line per file, or per top-level folder when there are many (a bundle carries mlctl's own sources). */
function fileLines(files: Record<string, { bytes: number; sha256: string }>): string[] {
  const entries = Object.entries(files);
  if (entries.length <= 16) return entries.map(([f, e]) => `  ${f}  ${e.bytes} bytes  sha256 ${e.sha256.slice(0, 16)}…`);
  const groups = new Map<string, { n: number; bytes: number }>();
  for (const [f, e] of entries) {
    const top = f.includes('/') ? `${f.split('/')[0]}/` : f;
    const g = groups.get(top) ?? { n: 0, bytes: 0 };
    groups.set(top, { n: g.n + 1, bytes: g.bytes + e.bytes });
  }
  return [...groups].map(([top, g]) => `  ${top}  ${g.n > 1 || top.endsWith('/') ? `${g.n} files, ` : ''}${g.bytes} bytes`);
}

export async function run(ctx: ExportContext): Promise<CommandResult> {
  const { args, opts, logger } = ctx;
  const access = await packageAccessFrom(opts, { withKey: false, logger });
  await startBackend(ctx);
  const res = await exportModel(args[0], {
    trust: access.trust,
    requireSignature: access.requireSignature,
    format: opts.format,
    out: opts.out,
    force: opts.force,
    quantize: opts.quantize,
    opset: opts.opset,
    embedPreprocessing: opts.embedPreprocessing,
    nmsIou: opts.nmsIou,
    rawDetections: opts.rawDetections,
    name: opts.name,
    version: opts.modelVersion,
    maxBatch: opts.maxBatch,
    queueDelayUs: opts.queueDelayUs,
    instances: opts.instances,
    image: opts.image,
    baseImage: opts.baseImage,
    device: opts.device,
    minReplicas: opts.minReplicas,
    maxReplicas: opts.maxReplicas,
    shards: opts.shards,
    logger,
  });
  const text = [`${res.format} export of ${res.source.name} v${res.source.version} → ${res.out}`, ...fileLines(res.files)].join('\n');
  return { result: { ...res }, text };
}
