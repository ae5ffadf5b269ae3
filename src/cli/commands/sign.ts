// `mlctl sign` and `mlctl verify`: the option tables (light; the runners are cli/run/sign.ts). An Ed25519 signature
// over a package's mlctl.json (which hashes every file) in the detached mlctl.sig, and its check against trusted keys.
import { defineCommand, type ContextOf } from '../spec.js';

export const signCommand = defineCommand({
  name: 'sign',
  summary: 'sign a model package version (Ed25519 over its mlctl.json, written to mlctl.sig)',
  description:
    'Checks every file against mlctl.json, then signs the statement {manifestSha256, name, version, keyId, signedAt} (canonical JSON) ' +
    'and writes it with the signature to mlctl.sig in the package (replacing an older signature). New versions made from a signed ' +
    'package (optimize, quantize, prune, encrypt) are unsigned until signed; their lineage records who signed the parent. Logged to the registry audit log.',
  args: ['<model>'],
  options: [{ flags: '-k, --key <file>', description: 'Ed25519 private key (PEM, from mlctl keys generate); passphrase from MLCTL_SIGNING_KEY_PASSPHRASE', env: 'MLCTL_SIGNING_KEY', required: true }],
  examples: ['mlctl sign sample@3 --key keys/mlctl.key.pem', 'MLCTL_SIGNING_KEY=/secure/release.key.pem mlctl sign artifacts/sample/3 --json'],
});

export const verifyCommand = defineCommand({
  name: 'verify',
  summary: "check a package's files, manifest and signature against trusted public keys",
  description:
    'Exit 0 only when every file matches mlctl.json, the signature covers this mlctl.json and the NAME/VERSION folder it sits in, and the signer is one of the trusted keys. ' +
    'Failures name what failed: SIGNATURE_MISSING, SIGNATURE_INVALID (a changed manifest or signature file), SIGNATURE_MISMATCH (a signed version copied over another version or model), SIGNER_UNTRUSTED, PACKAGE_HASH_MISMATCH (a changed model file).',
  args: ['<model>'],
  options: [{ flags: '-t, --trusted <path>', description: 'trusted public keys: a directory of *.pem files, or one file', env: 'MLCTL_TRUSTED_KEYS', required: true }],
  examples: ['mlctl verify sample@3 --trusted keys/trusted', 'mlctl verify artifacts/sample/3 --trusted release.pub.pem --json'],
});

export type SignContext = ContextOf<typeof signCommand>;
export type VerifyContext = ContextOf<typeof verifyCommand>;
