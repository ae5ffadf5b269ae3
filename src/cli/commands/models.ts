// `mlctl models ls|show|diff|tag|untag|rm|gc`: the model registry over the artifacts root (src/registry).
import { MLCTL_VERSION } from '../../export/source.js';
import { usageError } from '../../errors.js';
import { diffPackages } from '../../registry/diff.js';
import { formatDiff, formatGc, formatList, formatShow } from '../../registry/format.js';
import { listPackages } from '../../registry/inspect.js';
import { collectGarbage, removeVersion } from '../../registry/remove.js';
import { showPackage } from '../../registry/show.js';
import { tagVersion, untag } from '../../registry/tags.js';
import type { CommandSpec } from '../spec.js';

const via = (sub: string) => `mlctl ${MLCTL_VERSION} models ${sub}`;

const ls: CommandSpec = {
  name: 'ls',
  aliases: ['list'],
  summary: 'list model packages: version, task, backbone, size, accuracy, tags, status, parent',
  description: 'Every version of every model under the artifacts root (or of NAME). Status is ok, rejected (a quality gate refused it) or corrupt (unreadable manifest, missing or resized files; with --verify, any file whose sha256 differs) — corrupt packages are listed, never skipped.',
  args: ['[name]'],
  options: [{ flags: '--verify', description: 're-hash every file (slower) instead of checking sizes', type: 'boolean' }],
  examples: ['mlctl models ls', 'mlctl models ls sample --verify --json'],
  async run(ctx) {
    const name = ctx.args[0] as string | undefined;
    const { root, packages } = await listPackages({ name, verify: Boolean(ctx.opts.verify) });
    const corrupt = packages.filter((p) => p.status === 'corrupt');
    for (const p of corrupt) ctx.logger.warn(`${p.name}@${p.version} is corrupt: ${p.reason}`);
    return {
      result: { root, packages: packages.map(({ manifest: _m, ...p }) => p), corrupt: corrupt.length },
      text: formatList(packages),
    };
  },
};

const show: CommandSpec = {
  name: 'show',
  summary: 'one package: manifest summary, lineage chain with metric deltas, files and hashes verified',
  args: ['<model>'],
  options: [],
  examples: ['mlctl models show sample', 'mlctl models show sample@3', 'mlctl models show sample:production --json'],
  async run(ctx) {
    const res = await showPackage(ctx.args[0] as string);
    if (!res.verified) ctx.logger.error(`${res.package.name}@${res.package.version} failed its integrity check: ${res.package.reason ?? 'manifest unreadable'}`);
    return { exitCode: res.verified ? 0 : 1, result: { ...res }, text: formatShow(res) };
  },
};

const diff: CommandSpec = {
  name: 'diff',
  summary: 'what changed between two versions: parameters, metrics, size, labels, lineage, files',
  args: ['<a>', '<b>'],
  options: [],
  examples: ['mlctl models diff sample@1 sample@2', 'mlctl models diff sample:staging sample:production --json'],
  async run(ctx) {
    const res = await diffPackages(ctx.args[0] as string, ctx.args[1] as string);
    return { result: { ...res }, text: formatDiff(res) };
  },
};

const tag: CommandSpec = {
  name: 'tag',
  summary: 'point a tag (production, staging, …) at a version; NAME:TAG then works everywhere',
  description: 'Moves the tag atomically (a lock file and a rename; concurrent taggers never lose a change) and records who set it (MLCTL_ACTOR, else user@host), when and with which mlctl in the model\'s registry.json history. `mlctl serve NAME:TAG --watch` follows the tag as it moves.',
  args: ['<model@version>', '<tag>'],
  options: [
    { flags: '--note <text>', description: 'why, kept in the history (e.g. a ticket or a CI run)' },
    { flags: '--force', description: 'tag a rejected or corrupt version anyway', type: 'boolean' },
  ],
  examples: ['mlctl models tag sample@3 production', 'MLCTL_ACTOR=ci-run-812 mlctl models tag sample@4 staging --note "nightly"'],
  async run(ctx) {
    const res = await tagVersion(ctx.args[0] as string, ctx.args[1] as string, { note: ctx.opts.note as string | undefined, force: Boolean(ctx.opts.force), via: via('tag') });
    const moved = res.previous !== undefined && res.previous !== res.version ? ` (moved from version ${res.previous})` : '';
    return { result: { ...res }, text: `${res.name}:${res.tag} → version ${res.version}${moved}, set by ${res.setBy}` };
  },
};

const untagCommand: CommandSpec = {
  name: 'untag',
  summary: 'remove a tag (NAME TAG, NAME:TAG, or NAME@V TAG to check where it points)',
  args: ['<model>', '[tag]'],
  options: [{ flags: '--note <text>', description: 'why, kept in the history' }],
  examples: ['mlctl models untag sample staging', 'mlctl models untag sample:staging'],
  async run(ctx) {
    const res = await untag(ctx.args[0] as string, ctx.args[1] as string | undefined, { note: ctx.opts.note as string | undefined, via: via('untag') });
    return { result: { ...res }, text: `removed tag ${res.tag} of ${res.name} (it pointed at version ${res.version})` };
  },
};

const rm: CommandSpec = {
  name: 'rm',
  summary: 'remove a version (a tagged one only with --force, which removes its tags too)',
  args: ['<model@version>'],
  options: [{ flags: '--force', description: 'remove it even if tagged (the tags are removed and recorded)', type: 'boolean' }],
  examples: ['mlctl models rm sample@2', 'mlctl models rm sample@3 --force'],
  async run(ctx) {
    const res = await removeVersion(ctx.args[0] as string, { force: Boolean(ctx.opts.force), via: via('rm') });
    if (res.dependents.length) ctx.logger.warn(`${res.dependents.join(', ')} were derived from it: their lineage now shows it as removed`);
    return { result: { ...res }, text: `removed ${res.name}@${res.version}${res.untagged.length ? ` and its tags ${res.untagged.join(', ')}` : ''}` };
  },
};

const gc: CommandSpec = {
  name: 'gc',
  summary: 'remove old versions: keep the newest N, every tagged one and the lineage they come from',
  args: ['[names...]'],
  options: [
    { flags: '--keep <n>', description: 'newest versions kept per model', type: 'int', min: 0 },
    { flags: '--dry-run', description: 'show what would be removed, remove nothing', type: 'boolean' },
  ],
  examples: ['mlctl models gc --keep 3 --dry-run', 'mlctl models gc sample --keep 1'],
  async run(ctx) {
    if (ctx.opts.keep === undefined) throw usageError('gc needs --keep N: how many of the newest versions of each model to keep (tagged versions and their lineage are always kept)');
    const names = (ctx.args[0] as string[] | undefined) ?? [];
    const res = await collectGarbage({ keep: ctx.opts.keep as number, names, dryRun: Boolean(ctx.opts.dryRun), via: via('gc') });
    return { result: { ...res }, text: formatGc(res.decisions, res.removed, res.dryRun) };
  },
};

export const modelsCommand: CommandSpec = {
  name: 'models',
  summary: 'the model registry: list, show, diff, tag/untag, rm, gc',
  description: 'Packages live under the artifacts root (MLCTL_ARTIFACTS, default ./artifacts) as NAME/VERSION/; tags and their history in NAME/registry.json. Unknown names, versions and tags exit 1 with the close matches.',
  options: [],
  examples: ['mlctl models ls', 'mlctl models tag sample@3 production', 'mlctl serve sample:production --watch'],
  subcommands: [ls, show, diff, tag, untagCommand, rm, gc],
};
