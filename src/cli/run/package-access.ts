// --require-signature / --trusted-keys / --key-file as loadPackage's options: trusted keys and the model key are
// read here, before any model loads, so a bad flag or an unreadable key fails in milliseconds.
import { loadModelKey } from '../../artifacts/encryption.js';
import type { LoadOptions } from '../../artifacts/package.js';
import { loadTrustedKeys } from '../../artifacts/signing.js';
import { MlctlError } from '../../errors.js';
import type { Logger } from '../../util/log.js';

export interface PackageAccessOpts {
  requireSignature?: boolean;
  trustedKeys?: string;
  keyFile?: string;
  /** Present (true or false) on commands that run a model for real (serve, predict): false refuses rejected versions. */
  allowRejected?: boolean;
}

const str = (v: string | undefined) => (v && v.trim() ? v : undefined);

/** `withKey`: the command runs models (serve, evaluate) and so reads --key-file / MLCTL_MODEL_KEY. */
export async function packageAccessFrom(opts: PackageAccessOpts, { withKey = true, logger }: { withKey?: boolean; logger?: Logger } = {}): Promise<Omit<LoadOptions, 'verify'>> {
  const trustedPath = str(opts.trustedKeys);
  const requireSignature = Boolean(opts.requireSignature);
  if (requireSignature && !trustedPath) throw new MlctlError('OPTION_REQUIRED', ['--require-signature needs --trusted-keys PATH (or MLCTL_TRUSTED_KEYS): the public keys whose signatures are accepted']);
  const trust = trustedPath ? await loadTrustedKeys(trustedPath) : undefined;
  const key = withKey ? await loadModelKey({ file: str(opts.keyFile) }) : undefined;
  if (trust) logger?.info(`package signatures: ${requireSignature ? 'required' : 'checked when present'} (${trust.keys.size} trusted key(s) from ${trust.source})`);
  if (key) logger?.info(`model key ${key.keyId} from ${key.source}: encrypted packages are decrypted in memory`);
  return { ...(trust ? { trust } : {}), requireSignature, ...(key ? { key } : {}), ...(opts.allowRejected === false ? { refuseRejected: true } : {}) };
}
