// `mlctl export` logic: load and verify the source package, write the chosen format into a temporary directory and
// rename it into place, and report what was written (every file's sha256) and where it came from.
import path from 'node:path';
import { appendRegistryAudit } from '../artifacts/audit-log.js';
import type { FileEntry } from '../artifacts/manifest.js';
import { assertValidName, loadPackage, packageRef, verifyPackageSignature, type LoadedPackage } from '../artifacts/package.js';
import { assertNotEncrypted, registryRootOf } from '../artifacts/package-security.js';
import type { TrustedKeys } from '../artifacts/signing.js';
import { MlctlError } from '../errors.js';
import { writeBundleExport, type BundleOptions } from './bundle.js';
import { writeOnnxExport, type OnnxExportOptions } from './onnx-export.js';
import { writeOutputDir } from './outdir.js';
import { EXPORT_FORMATS, exportSource, type ExportFormat, type ExportSource } from './source.js';
import { writeTfjsExport, type TfjsExportOptions } from './tfjs.js';
import { writeTritonExport, type TritonOptions } from './triton.js';

export { EXPORT_FORMATS, type ExportFormat } from './source.js';
export { WEIGHT_DTYPES as TFJS_QUANTIZATIONS, type WeightDtype as TfjsQuantization } from '../artifacts/weight-quant.js';

export interface ExportOptions extends TfjsExportOptions, OnnxExportOptions, Omit<TritonOptions, 'maxBatch'>, Omit<BundleOptions, 'maxBatch'> {
  format: ExportFormat;
  out: string;
  force?: boolean;
  /** Triton max_batch_size and the bundle's `mlctl serve --max-batch`. */
  maxBatch?: number;
  /** Check the source's signature against these keys (a bad or untrusted one is refused). */
  trust?: TrustedKeys;
  /** Refuse a source without a valid signature by one of `trust`'s keys. */
  requireSignature?: boolean;
}

export interface ExportResult {
  format: ExportFormat;
  /** The directory written (for triton: <out>/<name>, the model's entry in the repository). */
  out: string;
  source: ExportSource;
  /** Every file written, relative to `out`, with sha256 and size. */
  files: Record<string, FileEntry>;
  details: Record<string, unknown>;
}

export async function exportModel(ref: string | LoadedPackage, opts: ExportOptions): Promise<ExportResult> {
  if (!(EXPORT_FORMATS as readonly string[]).includes(opts.format)) {
    throw new MlctlError('OPTION_INVALID', [`unknown export format "${opts.format}": choose one of ${EXPORT_FORMATS.join(', ')}`]);
  }
  if (opts.quantize && opts.format !== 'tfjs') {
    throw new MlctlError('OPTION_CONFLICT', [`--quantize applies to --format tfjs; for int8 ONNX run \`mlctl quantize\` first and export the quantized package`]);
  }
  if (opts.embedPreprocessing && opts.format !== 'onnx' && opts.format !== 'triton') {
    throw new MlctlError('OPTION_CONFLICT', [`--embed-preprocessing applies to --format onnx and triton (the graph takes UINT8 pixels); ${opts.format} keeps the package's float input`]);
  }
  if (opts.name !== undefined) assertValidName(opts.name);
  const pkg = typeof ref === 'string' ? await loadPackage(ref, { trust: opts.trust, requireSignature: opts.requireSignature }) : ref;
  if (typeof ref !== 'string' && (opts.trust || opts.requireSignature)) await verifyPackageSignature(pkg, opts.trust, { required: Boolean(opts.requireSignature) });
  // A bundle carries the encrypted package as it is (the key comes from a Kubernetes Secret at run time); the other
  // formats are plain model files for other runtimes, which would put the weights on disk in the clear.
  // Exports turn a task model (one input, one output, labels) into other runtimes' layouts; a generic tensor model
  // (task "tensors") is served as it is.
  if (pkg.manifest.input.kind === 'tensors') throw new MlctlError('EXPORT_UNSUPPORTED', [`${pkg.manifest.name} v${pkg.manifest.version} is a generic tensor model (it declares its own tensors, no task): export handles image and tabular models; serve it with mlctl serve, or use its model file (${Object.values(pkg.manifest.formats).join(', ')}) as it is`]);
  if (opts.format !== 'bundle') assertNotEncrypted(pkg, `--format ${opts.format} would write its weights in the clear; export it as a bundle (the key is mounted from a Secret), or export the plaintext version it was encrypted from`);
  const log = opts.logger;
  log?.info(`exporting ${pkg.manifest.name} v${pkg.manifest.version} (${pkg.dir}) as ${opts.format}`);
  // A Triton repository holds many models: the unit written (and guarded by --force) is <out>/<name>.
  const target = opts.format === 'triton' ? path.join(opts.out, opts.name ?? pkg.manifest.name) : opts.out;
  const written = await writeOutputDir(
    target,
    Boolean(opts.force),
    async (tmp) => {
      switch (opts.format) {
        case 'tfjs':
          return writeTfjsExport(pkg, tmp, opts);
        case 'onnx':
          return writeOnnxExport(pkg, tmp, opts);
        case 'triton':
          return writeTritonExport(pkg, tmp, opts);
        case 'bundle':
          return writeBundleExport(pkg, tmp, opts);
      }
    },
    [pkg.dir],
  );
  const bytes = Object.values(written.files).reduce((a, f) => a + f.bytes, 0);
  log?.info(`wrote ${Object.keys(written.files).length} files (${(bytes / 1024 / 1024).toFixed(1)} MiB) to ${written.dir}`);
  // The export is written; a registry mounted read-only (CI, a container) must not turn it into a failure.
  await appendRegistryAudit(registryRootOf(pkg), { command: 'export', before: packageRef(pkg), details: { format: opts.format, out: written.dir, files: Object.keys(written.files).length, ...(pkg.signature ? { signer: pkg.signature.keyId } : {}) } }).catch(
    (err: Error) => log?.warn(`the export was not recorded in the registry audit log: ${err.message.split('\n')[0]}`),
  );
  return { format: opts.format, out: written.dir, source: exportSource(pkg), files: written.files, details: written.value };
}
