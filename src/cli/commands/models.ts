// `mlctl models ls|show|diff|tag|untag|rm|gc`: the option tables of the model registry over the artifacts root.
// Light: the runners (cli/run/models.ts) are imported only when one runs.
import { defineCommand, type ContextOf } from '../spec.js';

export const modelsLsCommand = defineCommand({
  name: 'ls',
  aliases: ['list'],
  summary: 'list model packages: version, task, backbone, size, accuracy, tags, status, parent',
  description:
    'Every version of every model under the artifacts root (or of NAME). Status is ok, rejected (a quality gate refused it) or corrupt (unreadable manifest, missing or resized files; with --verify, any file whose sha256 differs) — corrupt packages are listed, never skipped.',
  args: ['[name]'],
  options: [{ flags: '--verify', description: 're-hash every file (slower) instead of checking sizes', type: 'boolean' }],
  examples: ['mlctl models ls', 'mlctl models ls sample --verify --json'],
});

export const modelsShowCommand = defineCommand({
  name: 'show',
  summary: 'one package: manifest summary, lineage chain with metric deltas, files and hashes verified',
  description: 'Exits 1 when a file fails its sha256 check (the report still lists every file).',
  args: ['<model>'],
  options: [],
  examples: ['mlctl models show sample', 'mlctl models show sample@3', 'mlctl models show sample:production --json'],
});

export const modelsDiffCommand = defineCommand({
  name: 'diff',
  summary: 'what changed between two versions: parameters, metrics, size, labels, lineage, files',
  args: ['<a>', '<b>'],
  options: [],
  examples: ['mlctl models diff sample@1 sample@2', 'mlctl models diff sample:staging sample:production --json'],
});

export const modelsTagCommand = defineCommand({
  name: 'tag',
  summary: 'point a tag (production, staging, …) at a version; NAME:TAG then works everywhere',
  description:
    "Moves the tag atomically (a lock file and a rename; concurrent taggers never lose a change) and records who set it (MLCTL_ACTOR, else user@host), when and with which mlctl in the model's registry.json history. `mlctl serve NAME:TAG --watch` follows the tag as it moves.",
  args: ['<model@version>', '<tag>'],
  options: [
    { flags: '--note <text>', description: 'why, kept in the history (e.g. a ticket or a CI run)' },
    { flags: '--force', description: 'tag a rejected or corrupt version anyway', type: 'boolean' },
  ],
  examples: ['mlctl models tag sample@3 production', 'MLCTL_ACTOR=ci-run-812 mlctl models tag sample@4 staging --note "nightly"'],
});

export const modelsUntagCommand = defineCommand({
  name: 'untag',
  summary: 'remove a tag (NAME TAG, NAME:TAG, or NAME@V TAG to check where it points)',
  args: ['<model>', '[tag]'],
  options: [{ flags: '--note <text>', description: 'why, kept in the history' }],
  examples: ['mlctl models untag sample staging', 'mlctl models untag sample:staging'],
});

export const modelsRmCommand = defineCommand({
  name: 'rm',
  summary: 'remove a version (a tagged one only with --force, which removes its tags too)',
  args: ['<model@version>'],
  options: [{ flags: '--force', description: 'remove it even if tagged (the tags are removed and recorded)', type: 'boolean' }],
  examples: ['mlctl models rm sample@2', 'mlctl models rm sample@3 --force'],
});

export const modelsGcCommand = defineCommand({
  name: 'gc',
  summary: 'remove old versions: keep the newest N, every tagged one and the lineage they come from',
  args: ['[names...]'],
  options: [
    { flags: '--keep <n>', description: 'newest versions kept per model (tagged versions and their lineage are always kept)', type: 'int', min: 0, required: true },
    { flags: '--dry-run', description: 'show what would be removed, remove nothing', type: 'boolean' },
  ],
  examples: ['mlctl models gc --keep 3 --dry-run', 'mlctl models gc sample --keep 1'],
});

export const modelsCommand = defineCommand({
  name: 'models',
  summary: 'the model registry: list, show, diff, tag/untag, rm, gc, audit',
  description:
    'Packages live under the artifacts root (MLCTL_ARTIFACTS, default ./artifacts) as NAME/VERSION/; the tags of a model in NAME/registry.json; every change (train, optimize, tag, untag, rm, gc, export, sign …) in the hash-chained audit log audit.jsonl. Unknown names, versions and tags exit 1 with the close matches.',
  options: [],
  examples: ['mlctl models ls', 'mlctl models tag sample@3 production', 'mlctl serve sample:production --watch'],
});

export type ModelsLsContext = ContextOf<typeof modelsLsCommand>;
export type ModelsShowContext = ContextOf<typeof modelsShowCommand>;
export type ModelsDiffContext = ContextOf<typeof modelsDiffCommand>;
export type ModelsTagContext = ContextOf<typeof modelsTagCommand>;
export type ModelsUntagContext = ContextOf<typeof modelsUntagCommand>;
export type ModelsRmContext = ContextOf<typeof modelsRmCommand>;
export type ModelsGcContext = ContextOf<typeof modelsGcCommand>;
