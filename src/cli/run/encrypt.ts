// Runs `mlctl encrypt` and `mlctl decrypt` (loaded on demand): stream every weight file through AES-256-GCM into a
// new package version, with progress in MiB.
import { loadModelKey, MODEL_KEY_ENV } from '../../artifacts/encryption.js';
import { loadPackage, type LoadedPackage } from '../../artifacts/package.js';
import { decryptPackage, encryptPackage, packageBytes } from '../../artifacts/package-security.js';
import { MlctlError } from '../../errors.js';
import type { Logger } from '../../util/log.js';
import { createProgress } from '../../util/progress.js';
import type { DecryptContext, EncryptContext } from '../commands/encrypt.js';
import type { CommandResult } from '../spec.js';

/** Progress in MiB over a streamed transform. */
function byteProgress(label: string, total: number, logger: Logger) {
  const MiB = 1024 * 1024;
  const progress = createProgress({ label, total: Math.max(1, Math.ceil(total / MiB)), unit: 'MiB', logger });
  let bytes = 0;
  let ticked = 0;
  return {
    onBytes(n: number) {
      bytes += n;
      const whole = Math.floor(bytes / MiB);
      if (whole > ticked) {
        progress.tick(whole - ticked);
        ticked = whole;
      }
    },
    done: (summary: string) => progress.done(summary),
  };
}

async function transform(ctx: EncryptContext | DecryptContext, op: 'encrypt' | 'decrypt'): Promise<CommandResult> {
  const key = await loadModelKey({ file: ctx.opts.keyFile });
  if (!key && op === 'encrypt') throw new MlctlError('OPTION_REQUIRED', [`encrypt needs a key: --key-file FILE or ${MODEL_KEY_ENV} (mlctl keys generate --type encryption writes one)`]);
  const source = await loadPackage(ctx.args[0]);
  const total = packageBytes(source);
  const p = byteProgress(`${op}ing ${source.manifest.name} v${source.manifest.version}`, total, ctx.logger);
  const t0 = performance.now();
  const pkg: LoadedPackage = op === 'encrypt' ? await encryptPackage(source, key!, { onBytes: p.onBytes }) : await decryptPackage(source, key, { onBytes: p.onBytes });
  const seconds = (performance.now() - t0) / 1000;
  p.done(`${(total / 1024 / 1024).toFixed(1)} MiB (${(total / 1024 / 1024 / seconds).toFixed(0)} MiB/s)`);
  const m = pkg.manifest;
  const files = op === 'encrypt' ? m.encryption!.files : source.manifest.encryption!.files;
  return {
    result: {
      package: { name: m.name, version: m.version, dir: pkg.dir, manifestSha256: pkg.manifestSha256 },
      source: { name: source.manifest.name, version: source.manifest.version, dir: source.dir },
      keyId: key!.keyId,
      files,
      bytes: total,
      seconds,
    },
    text: `${op}ed ${source.manifest.name} v${source.manifest.version} → v${m.version} (${files.length} weight file(s), key ${key!.keyId})\n  ${pkg.dir}`,
  };
}

export const encrypt = (ctx: EncryptContext) => transform(ctx, 'encrypt');
export const decrypt = (ctx: DecryptContext) => transform(ctx, 'decrypt');
