// `mlctl models audit`: the option table (light; the runner is cli/run/models-audit.ts). Shows the registry's audit
// log and, with --verify, checks its hash chain and the packages on disk against it.
import { defineCommand, type ContextOf } from '../spec.js';

export const modelsAuditCommand = defineCommand({
  name: 'audit',
  summary: 'show or verify the registry audit log (artifacts/audit.jsonl)',
  description:
    'Every package-changing command (train, optimize, quantize, prune, sign, encrypt, decrypt, export, tag, rm) appends one line: time, command, ' +
    'user@host, the package before and after with its mlctl.json sha256, and the sha256 of the previous line; each model\'s registry.json anchors ' +
    'the newest line about it. --verify checks that chain (an edited, inserted or deleted line breaks it), that every anchored line is still in the log ' +
    'byte for byte (a deleted, emptied or cut log, or one rewritten with its hashes recomputed, fails), that every package on disk still has the ' +
    'mlctl.json the log recorded, and with --head SEQ:SHA256 (printed by an earlier --verify; keep it outside the artifacts root) that the pinned line ' +
    'is still there. It says what it could not check. Exit 1 (REGISTRY_AUDIT_BROKEN) when verification fails.',
  options: [
    { flags: '--verify', description: 'check the hash chain and the packages on disk against the log', type: 'boolean' },
    { flags: '--head <seq:sha256>', description: 'with --verify: a head recorded earlier that must still be in the log' },
    { flags: '-n, --limit <n>', description: 'show the last n records (0 = all)', type: 'int', default: 20, min: 0 },
    { flags: '--root <dir>', description: 'artifacts root holding audit.jsonl (default: MLCTL_ARTIFACTS or ./artifacts)' },
  ],
  examples: ['mlctl models audit', 'mlctl models audit --verify', 'mlctl models audit --verify --head 42:3f1c…e9 --json'],
});

export type ModelsAuditContext = ContextOf<typeof modelsAuditCommand>;
