// Runs `mlctl keys generate` (loaded on demand).
import path from 'node:path';
import { generateModelKey } from '../../artifacts/encryption.js';
import { generateSigningKeyPair, PASSPHRASE_ENV } from '../../artifacts/signing.js';
import type { KeysGenerateContext } from '../commands/keys.js';
import type { CommandResult } from '../spec.js';

export async function generate({ opts, logger }: KeysGenerateContext): Promise<CommandResult> {
  const dir = path.resolve(opts.out);
  if (opts.type === 'encryption') {
    const k = await generateModelKey(path.join(dir, `${opts.name}.model.key`), { force: opts.force });
    logger.info('keep the key file secret and backed up: packages encrypted with it cannot be read without it');
    return { result: { type: 'encryption', keyFile: k.file, keyId: k.keyId }, text: `model key ${k.keyId}\n  ${k.file} (mode 0600)` };
  }
  const pair = await generateSigningKeyPair(dir, { name: opts.name, force: opts.force, passphrase: process.env[PASSPHRASE_ENV] || undefined });
  return {
    result: { type: 'signing', privateKeyFile: pair.privateKeyFile, publicKeyFile: pair.publicKeyFile, keyId: pair.keyId },
    text: [`signing key ${pair.keyId}`, `  private: ${pair.privateKeyFile} (mode 0600)`, `  public:  ${pair.publicKeyFile} (give this to verifiers)`].join('\n'),
  };
}
