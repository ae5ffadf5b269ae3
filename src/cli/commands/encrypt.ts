// `mlctl encrypt` and `mlctl decrypt`: the option tables (light; the runners are cli/run/encrypt.ts). A new package
// version with the weights AES-256-GCM encrypted at rest, or back in the clear; the key is recorded only by its id.
import { KEY_FILE } from '../package-access.js';
import { defineCommand, type ContextOf } from '../spec.js';

const KEY = { ...KEY_FILE, description: 'the model key (else MLCTL_MODEL_KEY holds it): 64 hex digits, base64 of 32 bytes, or 32 raw bytes' } as const;

export const encryptCommand = defineCommand({
  name: 'encrypt',
  summary: 'write a new package version with its weights AES-256-GCM encrypted at rest',
  description:
    "Weight shards, model.onnx and classic-model.json become AES-256-GCM ciphertext (a random nonce per file, the file's path as associated data); " +
    'model.json (topology) and the rest stay readable. mlctl.json hashes the ciphertext and records the algorithm and key fingerprint, never the key. ' +
    'serve, evaluate, predict and watch decrypt in memory with --key-file / MLCTL_MODEL_KEY; nothing decrypted is written to disk. The new version is unsigned.',
  args: ['<model>'],
  options: [KEY],
  examples: ['mlctl encrypt sample@3 --key-file /secure/prod.model.key', 'MLCTL_MODEL_KEY=$(cat /secure/prod.model.key) mlctl encrypt sample --json'],
});

export const decryptCommand = defineCommand({
  name: 'decrypt',
  summary: 'write a new plaintext package version from an encrypted one',
  description: "Every encrypted file's GCM tag is checked; with a wrong key or a changed file nothing is written (exit 1).",
  args: ['<model>'],
  options: [KEY],
  examples: ['mlctl decrypt sample@4 --key-file /secure/prod.model.key'],
});

export type EncryptContext = ContextOf<typeof encryptCommand>;
export type DecryptContext = ContextOf<typeof decryptCommand>;
