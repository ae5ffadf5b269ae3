// The options that control which packages a command accepts and how it reads encrypted ones (--require-signature,
// --trusted-keys, --key-file; --allow-rejected for serve and predict), shared by serve, export and evaluate. Light
// on purpose (no imports beyond the spec types): --help loads it; cli/run/package-access.ts turns the parsed values
// into loadPackage's options.
import type { OptionSpec } from './spec.js';

export const REQUIRE_SIGNATURE = {
  flags: '--require-signature',
  description: 'refuse packages without a valid signature by a trusted key (with --trusted-keys)',
  type: 'boolean',
} as const satisfies OptionSpec;

export const TRUSTED_KEYS = {
  flags: '--trusted-keys <path>',
  description: 'public keys (a directory of *.pem, or one file) whose package signatures are accepted; signed packages are checked against them',
  env: 'MLCTL_TRUSTED_KEYS',
} as const satisfies OptionSpec;

export const KEY_FILE = {
  flags: '--key-file <file>',
  description: 'key of encrypted packages (else MLCTL_MODEL_KEY holds it): 64 hex digits, base64 of 32 bytes, or 32 raw bytes; weights are decrypted in memory only',
  env: 'MLCTL_MODEL_KEY_FILE',
} as const satisfies OptionSpec;

export const ALLOW_REJECTED = {
  flags: '--allow-rejected',
  description: 'run a version a quality gate marked rejected (prune/quantize/optimize --max-accuracy-drop) when it is named explicitly (NAME@VERSION, NAME:TAG or its folder); a bare NAME always means the newest version that is not rejected',
  type: 'boolean',
} as const satisfies OptionSpec;

export const SIGNATURE_OPTIONS = [REQUIRE_SIGNATURE, TRUSTED_KEYS] as const;
export const PACKAGE_ACCESS_OPTIONS = [REQUIRE_SIGNATURE, TRUSTED_KEYS, KEY_FILE] as const;
