// Registry changes made by `mlctl models` go to the registry's one audit log (artifacts/audit-log.ts): who (user,
// host, MLCTL_ACTOR when set), when, the package and the details. The change itself is already made when the line is
// appended, so a log that cannot be written is reported as a warning, never as a failed change.
import { appendRegistryAudit, type PackageRef, type RegistryAuditEvent } from '../artifacts/audit-log.js';
import type { Logger } from '../util/log.js';

export async function auditChange(root: string, event: RegistryAuditEvent, logger?: Logger): Promise<void> {
  const actor = process.env.MLCTL_ACTOR;
  const details = { ...(event.details ?? {}), ...(actor ? { actor } : {}) };
  await appendRegistryAudit(root, { ...event, ...(Object.keys(details).length ? { details } : {}) }).catch((err: Error) =>
    logger?.warn(`the ${event.command} was made but not recorded in the registry audit log: ${err.message.split('\n')[0]}`),
  );
}

export const refOf = (e: { name: string; version: number; manifestSha256?: string }): PackageRef => ({ name: e.name, version: e.version, manifestSha256: e.manifestSha256 ?? '' });
