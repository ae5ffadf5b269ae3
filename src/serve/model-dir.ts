// The directory mlctl serve was pointed at, for hot reload (--watch) and model control: which directory that is
// (a model directory, a folder of models, or NAME:TAG to follow), and the plugin that watches it and answers the
// model-repository routes (serve/reload.ts).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { MANIFEST_FILE } from '../artifacts/manifest.js';
import { artifactsRoot, parseModelRef } from '../artifacts/package.js';
import { MlctlError } from '../errors.js';
import type { Logger } from '../util/log.js';
import type { AuditLog } from './audit.js';
import type { ServeConfig } from './config.js';
import { createReloader, modelControlPlugin } from './reload.js';
import { plug, type ServePlugin } from './server.js';
import type { ModelRepository } from './types.js';

/** The directory --watch and model control read: what serve was pointed at, resolved like serve resolves it. */
export async function modelRoot(target: string): Promise<string> {
  const isDir = (p: string) => fs.stat(p).then((s) => s.isDirectory(), () => false);
  const candidates = [path.resolve(target), path.join(artifactsRoot(), target)];
  // NAME:TAG follows the tag: the reloader reads the model dir's registry.
  const ref = parseModelRef(target);
  if (ref?.tag !== undefined && !(await isDir(target))) return path.join(artifactsRoot(), ref.name);
  for (const c of candidates) {
    if (!(await isDir(c))) continue;
    if (await fs.stat(path.join(c, MANIFEST_FILE)).then(() => true, () => false)) {
      throw new MlctlError('OPTION_CONFLICT', [`${target} is a single package version: serve its model directory (${path.dirname(c)}) to use --watch or --allow-model-control`]);
    }
    return c;
  }
  throw new MlctlError('OPTION_CONFLICT', [`--watch and --allow-model-control need a model directory to read; ${target} is not one (pass artifacts/NAME or a folder of models)`]);
}

/**
 * The model-control plugin for the served directory, when there is one: the repository index (open to all) lists
 * what it holds; loading and unloading need modelDir.control, watching needs modelDir.watchIntervalMs (both refuse
 * a single package version). With --versions latest a switch retires the previous version.
 */
export async function modelDirPlugins(config: ServeConfig, ctx: { repo: ModelRepository; logger: Logger; audit?: AuditLog }): Promise<ServePlugin[]> {
  const { watchIntervalMs, control } = config.modelDir;
  const wanted = watchIntervalMs !== undefined || control;
  if (typeof config.models !== 'string') {
    if (wanted) throw new MlctlError('OPTION_CONFLICT', [`--watch and --allow-model-control need a model directory; ${config.models.ref} is not served from one`]);
    return [];
  }
  const target = config.models;
  const keep = config.modelDir.keepVersions ?? (config.versions === 'latest' ? 1 : undefined);
  const ref = parseModelRef(target);
  const follow = ref?.tag !== undefined && !(await fs.stat(target).then(() => true, () => false)) ? { name: ref.name, tag: ref.tag } : undefined;
  const root = await modelRoot(target).catch((err: unknown) => {
    if (wanted) throw err;
    return undefined;
  });
  if (!root) return [];
  const reloader = createReloader({ root, repo: ctx.repo, logger: ctx.logger, audit: ctx.audit, allowRejected: Boolean(config.allowRejected), ...(keep ? { keepVersions: keep } : {}), ...(follow ? { follow } : {}) });
  return [plug(modelControlPlugin, { reloader, enabled: control, ...(watchIntervalMs !== undefined ? { watchIntervalMs } : {}) })];
}
