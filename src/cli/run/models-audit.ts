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
  const lines = [
    ok ? `OK ${v.file}: ${v.records.length} records, hash chain intact${head ? `; head ${head}` : ''}` : `FAILED ${v.file}:`,
    ...problems.map((p) => `  ${p}`),
    ...drift.filter((d) => d.kind === 'unlogged').map((d) => `  note: ${d.name}@${d.version} ${d.detail}`),
  ];
  return {
    result: { file: v.file, verified: ok, records: v.records.length, problems: v.problems, packages: drift, ...(head ? { head } : {}) },
    text: lines.join('\n'),
    ...(ok ? {} : { error: new MlctlError('REGISTRY_AUDIT_BROKEN', [v.file, `${problems.length} problem(s), first: ${problems[0]}`]) }),
  };
}
