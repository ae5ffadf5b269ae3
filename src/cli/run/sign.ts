// Runs `mlctl sign` and `mlctl verify` (loaded on demand).
import { loadPackage, verifyPackageSignature } from '../../artifacts/package.js';
import { signPackageVersion } from '../../artifacts/package-security.js';
import { loadSigningKey, loadTrustedKeys, shortKeyId } from '../../artifacts/signing.js';
import type { SignContext, VerifyContext } from '../commands/sign.js';
import type { CommandResult } from '../spec.js';

export async function sign({ args, opts, logger }: SignContext): Promise<CommandResult> {
  const key = await loadSigningKey(opts.key);
  const pkg = await loadPackage(args[0]);
  const m = pkg.manifest;
  const r = await signPackageVersion(pkg, key);
  if (r.replaced) logger.warn(`replaced the previous signature by key ${shortKeyId(r.replaced)}`);
  return {
    result: { package: { name: m.name, version: m.version, dir: pkg.dir, manifestSha256: pkg.manifestSha256 }, keyId: key.keyId, signedAt: r.statement.signedAt, signatureFile: r.file, ...(r.replaced ? { replaced: r.replaced } : {}) },
    text: `signed ${m.name} v${m.version} (mlctl.json sha256 ${pkg.manifestSha256.slice(0, 16)}…) with key ${key.keyId}\n  ${r.file}`,
  };
}

export async function verify({ args, opts }: VerifyContext): Promise<CommandResult> {
  const trust = await loadTrustedKeys(opts.trusted);
  const pkg = await loadPackage(args[0]);
  const sig = (await verifyPackageSignature(pkg, trust, { required: true }))!;
  const m = pkg.manifest;
  const files = Object.keys(m.files).length;
  return {
    result: { package: { name: m.name, version: m.version, dir: pkg.dir, manifestSha256: pkg.manifestSha256 }, verified: true, files, signer: { keyId: sig.keyId, keyFile: sig.keyFile, signedAt: sig.signedAt } },
    text: `OK ${m.name} v${m.version}: ${files} files match mlctl.json; signed ${sig.signedAt} by ${sig.keyId} (${sig.keyFile})`,
  };
}
