// `mlctl keys generate`: the option table (light; the runner is cli/run/keys.ts). An Ed25519 key pair for signing
// packages, or a random AES-256 key for encrypting them.
import { defineCommand, type ContextOf } from '../spec.js';

export const keysGenerateCommand = defineCommand({
  name: 'generate',
  summary: 'write a signing key pair (Ed25519 PEM) or a model encryption key (AES-256)',
  description:
    'signing: NAME.key.pem (PKCS#8, mode 0600; encrypted with $MLCTL_SIGNING_KEY_PASSPHRASE when set) and NAME.pub.pem (share it: verifiers put it in their trusted keys). ' +
    'encryption: NAME.model.key (32 random bytes, base64, mode 0600) for mlctl encrypt / --key-file. Existing files are never overwritten without --force.',
  options: [
    { flags: '-o, --out <dir>', description: 'directory to write the key files into', required: true },
    { flags: '--type <kind>', description: 'signing: Ed25519 key pair; encryption: AES-256 model key', choices: ['signing', 'encryption'], default: 'signing' },
    { flags: '--name <name>', description: 'file name stem', default: 'mlctl' },
    { flags: '--force', description: 'replace existing key files', type: 'boolean' },
  ],
  examples: ['mlctl keys generate --out keys/', 'mlctl keys generate --out /secure --type encryption --name prod'],
});

export const keysCommand = defineCommand({
  name: 'keys',
  summary: 'generate signing and model encryption keys',
  options: [],
  examples: ['mlctl keys generate --out keys/', 'mlctl keys generate --out keys/ --type encryption'],
});

export type KeysGenerateContext = ContextOf<typeof keysGenerateCommand>;
