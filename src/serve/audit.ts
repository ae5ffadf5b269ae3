// Model audit trail for mlctl serve (--audit-log FILE): one JSON line per prediction and per model load, appended
// with O_APPEND and written synchronously (nothing buffered in-process), synced to disk every second, rotated by size.
import { closeSync, fdatasyncSync, fstatSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { sha256 } from '../artifacts/hash.js';
import { MlctlError } from '../errors.js';
import { taskOf } from '../tasks/index.js';
import fp from 'fastify-plugin';
import type { InferEvent, InferInput, InferResult, ModelRepository, ServedModel } from './types.js';

export interface AuditOptions {
  file: string;
  /** Rotate when the file would grow past this many bytes (default 100 MiB). */
  maxBytes?: number;
  /** Rotated files kept (FILE.1 newest … FILE.keep oldest; default 5). */
  keep?: number;
  /** fdatasync the file this often while lines are being written (default 1000 ms; 0 = after every line). */
  syncIntervalMs?: number;
}

export interface AuditLog {
  readonly file: string;
  write(record: Record<string, unknown>): void;
  close(): void;
}

export function openAuditLog(opts: AuditOptions): AuditLog {
  const file = path.resolve(opts.file);
  const maxBytes = opts.maxBytes ?? 100 * 1024 * 1024;
  const keep = opts.keep ?? 5;
  const open = (): { fd: number; size: number } => {
    try {
      mkdirSync(path.dirname(file), { recursive: true });
      const fd = openSync(file, 'a', 0o640);
      return { fd, size: fstatSync(fd).size };
    } catch (err) {
      throw new MlctlError('AUDIT_LOG', [file, `cannot open it for appending (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`]);
    }
  };
  let cur: { fd: number; size: number } | undefined = open();
  const syncMs = opts.syncIntervalMs ?? 1000;
  let dirty = false;
  // Lines reach the kernel at once (write(2) per line); this bounds what an OS crash or power loss could take.
  const syncTimer = syncMs > 0 ? setInterval(() => {
    if (dirty && cur) {
      fdatasyncSync(cur.fd);
      dirty = false;
    }
  }, syncMs) : undefined;
  syncTimer?.unref();
  const rotate = () => {
    fsyncSync(cur!.fd);
    closeSync(cur!.fd);
    cur = undefined;
    rmSync(`${file}.${keep}`, { force: true });
    for (let i = keep - 1; i >= 1; i--) {
      try {
        renameSync(`${file}.${i}`, `${file}.${i + 1}`);
      } catch {
        // that generation does not exist yet
      }
    }
    renameSync(file, `${file}.1`);
    cur = open();
  };
  return {
    file,
    write(record) {
      if (!cur) throw new MlctlError('AUDIT_LOG', [file, 'it is closed']);
      const line = Buffer.from(JSON.stringify(record) + '\n');
      if (cur.size > 0 && cur.size + line.length > maxBytes) rotate();
      // One write(2) per line on an O_APPEND descriptor: lines never interleave and survive a process crash.
      writeSync(cur.fd, line);
      cur.size += line.length;
      if (syncMs === 0) fdatasyncSync(cur.fd);
      else dirty = true;
    },
    close() {
      if (syncTimer) clearInterval(syncTimer);
      if (!cur) return;
      fsyncSync(cur.fd);
      closeSync(cur.fd);
      cur = undefined;
    },
  };
}

/**
 * Log a model load with its package hash, checked against its source (serve/source.ts): for a package directory,
 * mlctl.json must still hash to the manifest hash being served, and with `deep` every file is re-hashed against the
 * manifest (the repository's load already did that once before opening the engine). Throws, after logging the
 * refusal, on mismatch.
 */
export async function auditModelLoad(audit: AuditLog | undefined, model: ServedModel, event = 'model-load', opts: { deep?: boolean } = {}): Promise<void> {
  const base = { time: new Date().toISOString(), event, model: model.name, version: model.version, dir: model.source.location, manifestSha256: model.manifestSha256 };
  try {
    await model.source.recheck(model.package, opts);
  } catch (err) {
    audit?.write({ ...base, verified: false, error: (err as Error).message });
    throw err;
  }
  // "verified" covers the bytes that actually run: the package's files (against mlctl.json, itself covered by the
  // signature when signed) and the engine's model — a cached conversion counts only when it authenticated with the
  // cache key kept outside the cache (engines/onnx.ts), never on a sha256 recorded beside the bytes.
  const verified = model.package.verified && model.provenance.verified;
  audit?.write({ ...base, verified, files: Object.keys(model.manifest.files).length, engine: model.engine, runs: model.provenance.source });
}

/** The bytes of example `i` of a tensor: its elements' little-endian bytes (as in memory), or BYTES elements joined. */
function exampleBytes(t: InferInput, i: number, n: number): Uint8Array {
  const per = t.data.length / n;
  if (Array.isArray(t.data)) return per === 1 ? t.data[i]! : Buffer.concat(t.data.slice(i * per, (i + 1) * per));
  const d = t.data as Float32Array;
  return new Uint8Array(d.buffer, d.byteOffset + i * per * d.BYTES_PER_ELEMENT, per * d.BYTES_PER_ELEMENT);
}

/**
 * sha256 of each example of the request: the image bytes for BYTES images, the float32 bytes for FP32 — of every
 * input, in order, when a model takes several.
 */
export function exampleHashes(inputs: InferInput[]): string[] {
  if (!inputs.length) return [];
  const n = Math.max(1, inputs[0]!.shape[0] ?? 1);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const parts = inputs.filter((t) => t.data.length % n === 0).map((t) => exampleBytes(t, i, n));
    out.push(sha256(parts.length === 1 ? parts[0]! : Buffer.concat(parts)));
  }
  return out;
}

/**
 * One entry per example: what its audit line says of the prediction, in its task's terms (classifiers: the top label
 * and its score, 6 decimals); empty for a model without a task, whose lines record the call and its inputs only.
 */
export function predictionFields(result: InferResult): Array<Record<string, unknown>> {
  const m = result.model.manifest;
  const task = taskOf(m);
  const first = result.outputs[0];
  if (!first) return [];
  if (!task) return Array.from({ length: first.shape[0] ?? 1 }, () => ({}));
  return task.results(result.outputs, m, result.images ? { images: result.images } : {}).map((r) => task.audit(r, m));
}

/** The audit lines of one infer call: one per example on success, one with the error on failure. */
export function predictionRecords(e: InferEvent, repo: ModelRepository): Array<Record<string, unknown>> {
  const hashes = exampleHashes(e.inputs);
  const common = { requestId: e.ctx.requestId, keyId: e.ctx.keyId ?? null, client: e.ctx.clientAddress ?? null };
  const latencyMs = round(e.latencyMs);
  const time = new Date().toISOString();
  if (!e.result) {
    const served = repo.get(e.name, e.version);
    return [{
      time, event: 'predict-error', ...common, model: e.name, version: e.version ?? served?.version ?? null,
      manifestSha256: served?.manifestSha256 ?? null, inputSha256: hashes, error: (e.error as Error)?.message ?? String(e.error), latencyMs,
    }];
  }
  const result = e.result;
  return predictionFields(result).map((fields, index) => ({
    time, event: 'predict', ...common, index: (e.ctx.part?.index ?? 0) + index, model: result.model.name, version: result.model.version,
    manifestSha256: result.model.manifestSha256, inputSha256: hashes[index] ?? null, ...fields, latencyMs,
  }));
}

/**
 * Write audit lines for every infer call on `repo` (REST and gRPC alike: both go through the repository).
 * Returns the function that stops it.
 */
export function auditPredictions(repo: ModelRepository, audit: AuditLog): () => void {
  return repo.onInfer((e) => {
    // A key refused on the model: nothing ran; the front end that carried the call writes the auth-denied line.
    if (e.error instanceof MlctlError && e.error.code === 'PERMISSION_DENIED') return;
    for (const r of predictionRecords(e, repo)) audit.write(r);
  });
}

export interface AuditPluginOptions {
  audit: AuditLog;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The audit log (--audit-log), when on: auth refusals and predictions are written to it. */
    auditLog?: AuditLog;
  }
}

/**
 * --audit-log as a plugin: logs every loaded model with its verified hash at registration, then every prediction;
 * the log closes in onClose, after the engines (registered later) have finished their last batch.
 */
export const auditPlugin = fp<AuditPluginOptions>(
  async (app, { audit }) => {
    app.decorate('auditLog', audit);
    for (const m of app.mlctl.repo.list()) await auditModelLoad(audit, m, 'model-load');
    const stop = auditPredictions(app.mlctl.repo, audit);
    app.addHook('onClose', async () => {
      stop();
      audit.close();
    });
  },
  { name: 'mlctl-audit', dependencies: ['mlctl-core'], decorators: { fastify: ['mlctl'] } },
);

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
