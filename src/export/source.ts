// What every export records about where it came from: the source package's identity and file hashes, and one
// metadata document (labels, input/preprocessing, output, lineage) shared by all formats, generic over the manifest.
import type { LoadedPackage } from '../artifacts/package.js';
import { lineageFrom } from '../artifacts/package.js';
import type { FileEntry, InputSpec, LineageEntry, Manifest, OutputSpec } from '../artifacts/manifest.js';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
export const MLCTL_VERSION: string = (require('../../package.json') as { version: string }).version;

export const EXPORT_FORMATS = ['tfjs', 'onnx', 'triton', 'bundle'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface ExportSource {
  name: string;
  version: number;
  task: Manifest['task'];
  createdAt: string;
  /** sha256 of the source package's mlctl.json as stored: pins the exact package. */
  manifestSha256: string;
  /** The source package's file table (sha256 and size of every model file). */
  files: Record<string, FileEntry>;
}

/** The metadata document written beside (or inside) every exported model. */
export interface ExportMetadata {
  schemaVersion: 1;
  exportedBy: string;
  exportedAt: string;
  format: ExportFormat;
  name: string;
  task: Manifest['task'];
  labels: string[];
  input: InputSpec;
  output: OutputSpec;
  architecture: Record<string, unknown>;
  metrics?: Record<string, unknown>;
  source: ExportSource;
  /** The source package's lineage plus this export. */
  lineage: LineageEntry[];
  /** Format-specific facts (tensor names, quantization, file names). */
  details?: Record<string, unknown>;
}

export function exportSource(pkg: LoadedPackage): ExportSource {
  const m = pkg.manifest;
  return { name: m.name, version: m.version, task: m.task, createdAt: m.createdAt, manifestSha256: pkg.manifestSha256, files: m.files };
}

export function exportMetadata(pkg: LoadedPackage, format: ExportFormat, details?: Record<string, unknown>): ExportMetadata {
  const m = pkg.manifest;
  const entry = lineageFrom(pkg, `export:${format}`, details ? { ...details } : undefined);
  return {
    schemaVersion: 1,
    exportedBy: `mlctl ${MLCTL_VERSION}`,
    exportedAt: entry.at,
    format,
    name: m.name,
    task: m.task,
    labels: m.labels,
    input: m.input,
    output: m.output,
    architecture: m.architecture,
    ...(m.metrics ? { metrics: m.metrics } : {}),
    source: exportSource(pkg),
    lineage: [...m.lineage, { ...entry, tool: `mlctl ${MLCTL_VERSION}` }],
    ...(details ? { details } : {}),
  };
}
