// Hot reload and model control for mlctl serve: watch the served model directory and load new versions (verified,
// warmed, then switched to by the repository), refuse broken ones while the old version keeps serving, and expose
// POST /v2/repository/models/{name}/load|unload (+ /v2/repository/index) behind --allow-model-control.
import { watch, type FSWatcher, promises as fs } from 'node:fs';
import path from 'node:path';
import fp from 'fastify-plugin';
import { MANIFEST_FILE } from '../artifacts/manifest.js';
import { latestVersionDir, listVersions, resolveTag } from '../artifacts/package.js';
import type { Logger } from '../util/log.js';
import { auditModelLoad, type AuditLog } from './audit.js';
import { MlctlError } from '../errors.js';
import { badRequest, isExposed, notFound } from './errors.js';
import { isValidModelName, resolveInside } from './hygiene.js';
import type { ModelRepository, ServedModel } from './types.js';
import { modelLoadSchema, modelUnloadSchema } from './routes/schemas.js';

export interface ReloaderOptions {
  /** What `mlctl serve` was pointed at: a root of model dirs, or one model dir with numeric versions. */
  root: string;
  repo: ModelRepository;
  logger: Logger;
  audit?: AuditLog;
  /** After a switch, unload versions older than the newest N of that model (default: keep every version). */
  keepVersions?: number;
  /** A version directory is loaded only once no file in it changed for this long (default 500 ms). */
  settleMs?: number;
  /** Serve what a tag points at (`serve NAME:TAG --watch`; root is the model dir): switch when the tag moves. */
  follow?: { name: string; tag: string };
  /** --allow-rejected: a model loaded without a version may be one a quality gate rejected. */
  allowRejected?: boolean;
}

export interface Reloader {
  /** Look for new versions now (serialised: overlapping calls share one scan). */
  scan(): Promise<void>;
  /** Start watching (fs.watch events plus a poll every intervalMs, default 2000). */
  start(intervalMs?: number): void;
  /** Load a model's latest (or given) version from disk now; used by POST …/load. */
  loadModel(name: string, version?: number): Promise<ServedModel>;
  /** Unload every version of a model and stop auto-loading it until it is loaded again; POST …/unload. */
  unloadModel(name: string): Promise<ServedModel[]>;
  /** Directories refused, with the reason (until their files change). */
  refused(): Map<string, string>;
  /** Complete package versions (with mlctl.json) under the served directory, loaded or not. */
  available(): Promise<Array<{ name: string; version: number }>>;
  close(): void;
}

interface DirState {
  signature: string;
  reason: string;
}

async function isDir(p: string): Promise<boolean> {
  return fs.stat(p).then((s) => s.isDirectory(), () => false);
}

/** Size and mtime of every file under `dir` (recursively), for "did anything change" and "has it settled". */
async function fileStats(dir: string): Promise<{ signature: string; newest: number }> {
  const parts: string[] = [];
  let newest = 0;
  const walk = async (d: string, rel: string) => {
    for (const e of await fs.readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p, `${rel}${e.name}/`);
      else {
        const s = await fs.stat(p).catch(() => undefined);
        if (!s) continue;
        parts.push(`${rel}${e.name}:${s.size}:${s.mtimeMs}`);
        newest = Math.max(newest, s.mtimeMs);
      }
    }
  };
  await walk(dir, '');
  return { signature: parts.sort().join('|'), newest };
}

export function createReloader(opts: ReloaderOptions): Reloader {
  const { repo, logger } = opts;
  const settleMs = opts.settleMs ?? 500;
  const refusedDirs = new Map<string, DirState>();
  /** Models unloaded through the control API: the watcher leaves them alone until they are loaded again. */
  const suppressed = new Set<string>();
  const watchers: FSWatcher[] = [];
  let timer: NodeJS.Timeout | undefined;
  let debounce: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let again = false;
  let closed = false;
  let followError: string | undefined;

  /** Model directories under the root: the root itself when it holds numeric versions. */
  async function modelDirs(): Promise<string[]> {
    const root = path.resolve(opts.root);
    if ((await listVersions(root)).length) return [root];
    const entries = await fs.readdir(root, { withFileTypes: true }).catch(() => []);
    return entries.filter((e) => e.isDirectory() && isValidModelName(e.name)).map((e) => path.join(root, e.name)).sort();
  }

  const loadedDirs = () => new Set(repo.list().map((m) => path.resolve(m.source.location)));
  const servingVersion = (name: string) => repo.get(name)?.version;

  /** Load one version directory; a refusal is logged and remembered, and the old version keeps serving. */
  async function loadVersionDir(dir: string, how: 'hot reload' | 'model control'): Promise<ServedModel> {
    const name = path.basename(path.dirname(dir));
    const before = servingVersion(name);
    const { signature } = await fileStats(dir);
    let loaded: ServedModel[] = [];
    try {
      loaded = await repo.load(dir);
      for (const m of loaded) await auditModelLoad(opts.audit, m, how === 'hot reload' ? 'model-reload' : 'model-load');
    } catch (err) {
      // Loaded meanwhile by the other path (a watch scan and a control call racing): nothing was refused.
      const already = (err as { status?: number }).status === 409 ? repo.list().find((m) => path.resolve(m.source.location) === path.resolve(dir)) : undefined;
      if (already) return already;
      // Audit refused what the repository had already made visible: take it out again.
      for (const m of loaded) await repo.unload(m.name, m.version).catch(() => {});
      const reason = (err as Error).message;
      refusedDirs.set(dir, { signature, reason });
      opts.audit?.write({ time: new Date().toISOString(), event: 'model-refused', dir, error: reason });
      logger.error(`${how}: refused ${dir}: ${reason}; ${before !== undefined ? `${name} keeps serving v${before}` : `${name} is not served`}`);
      throw err;
    }
    refusedDirs.delete(dir);
    const model = loaded[0]!;
    const now = servingVersion(model.name);
    logger.info(`${how}: loaded ${model.name} v${model.version} from ${dir}${before !== undefined && now !== before ? `; switched from v${before} to v${now}` : ''}`);
    if (opts.keepVersions !== undefined) await trimVersions(model.name, opts.keepVersions);
    return model;
  }

  async function trimVersions(name: string, keep: number): Promise<void> {
    const versions = repo.list().filter((m) => m.name === name).map((m) => m.version).sort((a, b) => b - a);
    for (const v of versions.slice(Math.max(1, keep))) {
      await repo.unload(name, v);
      logger.info(`hot reload: unloaded ${name} v${v} (--keep-versions ${keep})`);
    }
  }

  /** Tag mode: load the version the tag points at (verified, warmed), then retire every other version. */
  async function followTag({ name, tag }: { name: string; tag: string }): Promise<void> {
    const modelDir = path.resolve(opts.root);
    const version = await resolveTag(name, tag, path.dirname(modelDir));
    const serving = repo.list().filter((m) => m.name === name);
    if (!serving.some((m) => m.version === version)) {
      const dir = path.join(modelDir, String(version));
      const stats = await fileStats(dir);
      const prior = refusedDirs.get(dir);
      if (prior && prior.signature === stats.signature) return;
      await loadVersionDir(dir, 'hot reload');
    }
    for (const m of serving.filter((x) => x.version !== version)) {
      await repo.unload(name, m.version);
      logger.info(`hot reload: ${name}:${tag} points at v${version}; unloaded v${m.version}`);
    }
  }

  async function scanOnce(): Promise<void> {
    if (opts.follow) {
      // Said once per distinct problem (a removed tag would otherwise be reported on every poll).
      return followTag(opts.follow).then(
        () => void (followError = undefined),
        (err: Error) => {
          if (err.message !== followError) logger.warn(`hot reload: following ${opts.follow!.name}:${opts.follow!.tag} failed: ${err.message}; the current version keeps serving`);
          followError = err.message;
        },
      );
    }
    const loaded = loadedDirs();
    for (const modelDir of await modelDirs()) {
      const name = path.basename(modelDir);
      if (suppressed.has(name)) continue;
      const maxLoaded = Math.max(0, ...repo.list().filter((m) => m.name === name).map((m) => m.version));
      for (const v of await listVersions(modelDir)) {
        const dir = path.join(modelDir, String(v));
        // Only versions newer than what is served: an older version someone unloaded stays unloaded.
        if (v <= maxLoaded || loaded.has(dir)) continue;
        if (!(await fs.stat(path.join(dir, MANIFEST_FILE)).then((s) => s.isFile(), () => false))) continue; // still being written
        const stats = await fileStats(dir);
        if (Date.now() - stats.newest < settleMs) continue; // still being written: next scan
        const prior = refusedDirs.get(dir);
        if (prior && prior.signature === stats.signature) continue;
        await loadVersionDir(dir, 'hot reload').catch(() => {});
      }
    }
  }

  const scan = (): Promise<void> => {
    if (closed) return Promise.resolve();
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await scanOnce().catch((err) => logger.warn(`hot reload: scanning ${opts.root} failed: ${(err as Error).message}`));
        } while (again && !closed);
      } finally {
        running = undefined;
      }
    })();
    return running;
  };

  const trigger = () => {
    if (debounce) clearTimeout(debounce);
    debounce = setTimeout(() => void scan(), settleMs + 50);
    debounce.unref();
  };

  async function watchDirs(): Promise<void> {
    const root = path.resolve(opts.root);
    for (const d of [root, ...(await modelDirs()).filter((d) => d !== root)]) {
      try {
        const w = watch(d, { persistent: false }, trigger);
        w.on('error', () => w.close());
        watchers.push(w);
      } catch {
        // Some filesystems cannot be watched: the poll still finds new versions.
      }
    }
  }

  return {
    scan,
    start(intervalMs = 2000) {
      void watchDirs();
      timer = setInterval(() => void scan(), intervalMs);
      timer.unref();
    },
    async loadModel(name, version) {
      if (!isValidModelName(name)) throw new MlctlError('MODEL_NAME_INVALID', [`invalid model name "${name.slice(0, 130)}"`]);
      const root = path.resolve(opts.root);
      const modelDir = (await listVersions(root)).length
        ? path.basename(root) === name
          ? root
          : undefined
        : await resolveInside(root, name).catch(() => undefined);
      if (!modelDir || !(await isDir(modelDir))) throw notFound(`no model "${name}" in ${opts.root}`);
      const versions = await listVersions(modelDir);
      // No version named: the newest one not marked rejected, as everywhere a bare name is resolved.
      const latest = version === undefined ? await latestVersionDir(modelDir, { allowRejected: opts.allowRejected }) : undefined;
      const v = version ?? (latest ? Number(path.basename(latest)) : undefined);
      if (v === undefined || !versions.includes(v)) throw notFound(`model "${name}" has no version ${version ?? ''} in ${modelDir} (found: ${versions.join(', ') || 'none'})`);
      suppressed.delete(name);
      const existing = repo.list().find((m) => m.name === name && m.version === v);
      if (existing) return existing;
      try {
        return await loadVersionDir(path.join(modelDir, String(v)), 'model control');
      } catch (err) {
        if (isExposed(err)) throw err;
        throw new MlctlError('MODEL_LOAD_FAILED', [`failed to load model "${name}" v${v}: ${(err as Error).message}`], { cause: err });
      }
    },
    async unloadModel(name) {
      if (!repo.list().some((m) => m.name === name)) throw notFound(`model "${name}" is not loaded`);
      suppressed.add(name);
      const gone = await repo.unload(name);
      logger.info(`model control: unloaded ${name} (${gone.map((m) => `v${m.version}`).join(', ')})`);
      opts.audit?.write({ time: new Date().toISOString(), event: 'model-unload', model: name, versions: gone.map((m) => m.version) });
      return gone;
    },
    refused: () => new Map([...refusedDirs].map(([d, s]) => [d, s.reason])),
    async available() {
      const out: Array<{ name: string; version: number }> = [];
      for (const modelDir of await modelDirs()) {
        for (const v of await listVersions(modelDir)) {
          if (await fs.stat(path.join(modelDir, String(v), MANIFEST_FILE)).then((s) => s.isFile(), () => false)) out.push({ name: path.basename(modelDir), version: v });
        }
      }
      return out;
    },
    close() {
      closed = true;
      if (timer) clearInterval(timer);
      if (debounce) clearTimeout(debounce);
      for (const w of watchers) w.close();
    },
  };
}

export interface ModelControlOptions {
  reloader: Reloader;
  /** --allow-model-control; when false the routes answer 403 saying how to enable them. */
  enabled: boolean;
  /** --watch: re-scan the model directory this often (ms) once the server listens; undefined = no watching. */
  watchIntervalMs?: number;
}

/**
 * Hot reload and the V2 model-repository extension (Triton/KServe `POST /v2/repository/...`) as a plugin: the
 * watcher starts once the server listens and stops when close() begins, so no version switches during a drain.
 */
export const modelControlPlugin = fp<ModelControlOptions>(async (app, opts) => {
  const { reloader } = opts;
  app.mlctl.modelControl = {
    enabled: opts.enabled,
    load: (name, version) => reloader.loadModel(name, version),
    unload: (name) => reloader.unloadModel(name),
    available: () => reloader.available(),
    refused: () => [...reloader.refused()].map(([dir, reason]) => ({ name: path.basename(path.dirname(dir)), version: Number(path.basename(dir)), dir, reason })),
    scan: () => reloader.scan(),
  };
  if (opts.watchIntervalMs !== undefined) {
    const ms = opts.watchIntervalMs;
    app.addHook('onListen', async () => reloader.start(ms));
    app.mlctl.info.watch = true;
  }
  app.addHook('preClose', async () => reloader.close());
  const guard = () => {
    if (!opts.enabled) throw new MlctlError('MODEL_CONTROL_DISABLED', ['model control is disabled: start mlctl serve with --allow-model-control']);
  };
  app.post<{ Params: { name: string } }>('/v2/repository/models/:name/load', { schema: modelLoadSchema }, async (request) => {
    guard();
    const body = request.body as { parameters?: { version?: unknown } } | undefined;
    const raw = body && typeof body === 'object' && !Buffer.isBuffer(body) ? body.parameters?.version : undefined;
    const version = raw === undefined ? undefined : Number(raw);
    if (version !== undefined && !(Number.isInteger(version) && version >= 1)) throw badRequest(`parameters.version must be a positive integer, got ${JSON.stringify(raw)}`);
    const m = await reloader.loadModel(request.params.name, version);
    return { name: m.name, version: String(m.version), ready: m.ready };
  });
  app.post<{ Params: { name: string } }>('/v2/repository/models/:name/unload', { schema: modelUnloadSchema }, async (request) => {
    guard();
    const gone = await reloader.unloadModel(request.params.name);
    return { name: request.params.name, unloaded: gone.map((m) => String(m.version)) };
  });
}, { name: 'mlctl-model-control', dependencies: ['mlctl-core', 'mlctl-hygiene', 'mlctl-auth'], decorators: { fastify: ['mlctl'] } });
