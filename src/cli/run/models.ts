// Runs `mlctl models …` (loaded on demand): the registry operations of src/registry, printed as tables or --json.
import { MlctlError } from '../../errors.js';
import { MLCTL_VERSION } from '../../export/source.js';
import { diffPackages } from '../../registry/diff.js';
import { formatDiff, formatGc, formatList, formatShow } from '../../registry/format.js';
import { listPackages } from '../../registry/inspect.js';
import { collectGarbage, removeVersion } from '../../registry/remove.js';
import { showPackage } from '../../registry/show.js';
import { tagVersion, untag as untagVersion } from '../../registry/tags.js';
import type { ModelsDiffContext, ModelsGcContext, ModelsLsContext, ModelsRmContext, ModelsShowContext, ModelsTagContext, ModelsUntagContext } from '../commands/models.js';
import type { CommandResult } from '../spec.js';

const via = (sub: string) => `mlctl ${MLCTL_VERSION} models ${sub}`;

export async function ls(ctx: ModelsLsContext): Promise<CommandResult> {
  const { root, packages } = await listPackages({ name: ctx.args[0], verify: ctx.opts.verify });
  const corrupt = packages.filter((p) => p.status === 'corrupt');
  for (const p of corrupt) ctx.logger.warn(`${p.name}@${p.version} is corrupt: ${p.reason}`);
  return { result: { root, packages: packages.map(({ manifest: _m, ...p }) => p), corrupt: corrupt.length }, text: formatList(packages) };
}

export async function show(ctx: ModelsShowContext): Promise<CommandResult> {
  const res = await showPackage(ctx.args[0]);
  const { name, version, reason } = res.package;
  const error = res.verified ? undefined : new MlctlError('PACKAGE_HASH_MISMATCH', [`${name}@${version}`, reason ?? 'its manifest is unreadable']);
  return { result: { ...res }, text: formatShow(res), ...(error ? { error } : {}) };
}

export async function diff(ctx: ModelsDiffContext): Promise<CommandResult> {
  const res = await diffPackages(ctx.args[0], ctx.args[1]);
  return { result: { ...res }, text: formatDiff(res) };
}

export async function tag(ctx: ModelsTagContext): Promise<CommandResult> {
  const res = await tagVersion(ctx.args[0], ctx.args[1], { note: ctx.opts.note, force: ctx.opts.force, via: via('tag'), logger: ctx.logger });
  const moved = res.previous !== undefined && res.previous !== res.version ? ` (moved from version ${res.previous})` : '';
  return { result: { ...res }, text: `${res.name}:${res.tag} → version ${res.version}${moved}, set by ${res.setBy}` };
}

export async function untag(ctx: ModelsUntagContext): Promise<CommandResult> {
  const res = await untagVersion(ctx.args[0], ctx.args[1], { note: ctx.opts.note, via: via('untag'), logger: ctx.logger });
  return { result: { ...res }, text: `removed tag ${res.tag} of ${res.name} (it pointed at version ${res.version})` };
}

export async function rm(ctx: ModelsRmContext): Promise<CommandResult> {
  const res = await removeVersion(ctx.args[0], { force: ctx.opts.force, via: via('rm'), logger: ctx.logger });
  if (res.dependents.length) ctx.logger.warn(`${res.dependents.join(', ')} were derived from it: their lineage now shows it as removed`);
  return { result: { ...res }, text: `removed ${res.name}@${res.version}${res.untagged.length ? ` and its tags ${res.untagged.join(', ')}` : ''}` };
}

export async function gc(ctx: ModelsGcContext): Promise<CommandResult> {
  const res = await collectGarbage({ keep: ctx.opts.keep, names: ctx.args[0], dryRun: ctx.opts.dryRun, via: via('gc'), logger: ctx.logger });
  return { result: { ...res }, text: formatGc(res.decisions, res.removed, res.dryRun) };
}
