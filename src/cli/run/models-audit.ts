// Runs `mlctl models audit` (loaded on demand): the log as a table, or its verification.
import Table from 'cli-table3';
import { packageDrift, registryAuditFile, verifyRegistryAudit, type PackageRef, type RegistryAuditRecord } from '../../artifacts/audit-log.js';
import { artifactsRoot } from '../../artifacts/package.js';
import { MlctlError } from '../../errors.js';
import type { ModelsAuditContext } from '../commands/models-audit.js';
import type { CommandResult } from '../spec.js';

const ref = (p?: PackageRef) => (p ? `${p.name}@${p.version}` : '');

function recordsTable(records: RegistryAuditRecord[]): string {
  const table = new Table({ head: ['seq', 'time', 'command', 'user@host', 'package', 'from', 'details'], style: { head: [], border: [] } });
  for (const r of records) table.push([r.seq, r.time, r.command, `${r.user}@${r.host}`, ref(r.package), ref(r.before), r.details ? JSON.stringify(r.details).slice(0, 60) : '']);
  return table.toString();
}

export async function audit({ opts }: ModelsAuditContext): Promise<CommandResult> {
  const root = opts.root ?? artifactsRoot();
  const v = await verifyRegistryAudit(root, { head: opts.head });
  const shown = opts.limit > 0 ? v.records.slice(-opts.limit) : v.records;
  const head = v.head ? `${v.head.seq}:${v.head.sha256}` : undefined;
  if (!opts.verify) {
    return {
      result: { file: v.file, records: shown, total: v.records.length, ...(head ? { head } : {}) },
      text: v.records.length ? recordsTable(shown) : `no audit records in ${registryAuditFile(root)}`,
    };
  }
  const drift = await packageDrift(root, v.records);
  const changed = drift.filter((d) => d.kind === 'changed');
  const ok = v.ok && changed.length === 0;
  const problems = [...v.problems.map((p) => `${p.line ? `line ${p.line}: ` : ''}${p.reason}`), ...changed.map((d) => `${d.name}@${d.version}: ${d.detail}`)];
  const lastSeq = v.head?.seq ?? 0;
  const anchored = v.anchors.models
    ? `anchored by the registry.json of ${v.anchors.models} model(s) up to seq ${v.anchors.upTo}`
    : 'NOT anchored (no model registry.json records a line of it)';
  // What passing means, said plainly: a hash chain is only as good as a head kept somewhere else.
  const limits = [
    ...(v.anchors.models === 0 ? ['without an anchor, a deleted, emptied or cut log, or one rewritten with its hashes recomputed, passes as well: pin the head with --head SEQ:SHA256 kept outside the artifacts root'] : []),
    ...(v.anchors.models && lastSeq > v.anchors.upTo ? [`lines after seq ${v.anchors.upTo} (${lastSeq - v.anchors.upTo}) are not anchored: lines added there by hand would not be detected`] : []),
    ...(!opts.head ? ['not detected without --head: the log rewritten together with every model\'s registry.json, or lines cut off the end after the newest anchor'] : []),
  ];
  const lines = [
    ok ? `OK ${v.file}: ${v.records.length} records, hash chain intact, ${anchored}${opts.head ? `, pinned head ${opts.head.split(':')[0]} present` : ''}${head ? `; head ${head}` : ''}` : `FAILED ${v.file}:`,
    ...problems.map((p) => `  ${p}`),
    ...drift.filter((d) => d.kind === 'unlogged').map((d) => `  note: ${d.name}@${d.version} ${d.detail}`),
    ...(ok ? limits.map((l) => `  note: ${l}`) : []),
  ];
  return {
    result: { file: v.file, verified: ok, records: v.records.length, problems: v.problems, packages: drift, anchors: v.anchors, limits, ...(head ? { head } : {}) },
    text: lines.join('\n'),
    ...(ok ? {} : { error: new MlctlError('REGISTRY_AUDIT_BROKEN', [v.file, `${problems.length} problem(s), first: ${problems[0]}`]) }),
  };
}
