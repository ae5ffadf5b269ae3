// Help text shared by every command's --help and by scripts/readme-reference.ts (docs/cli.md, docs/errors.md): exit
// codes, error codes, environment. Light: derived from the error registry, no command code.
import { EXIT_CODES } from '../errors.js';

/** Environment variables mlctl reads (an option's own variable is listed with the option). */
export const ENVIRONMENT: ReadonlyArray<{ name: string; meaning: string }> = [
  { name: 'MLCTL_BACKEND', meaning: 'default for --backend' },
  { name: 'MLCTL_CACHE', meaning: 'cache of weights, ONNX conversions and feature stores (default: $XDG_CACHE_HOME/mlctl, else ~/.cache/mlctl)' },
  { name: 'MLCTL_CACHE_MAX_SIZE', meaning: 'size cap of the cache; least recently used entries are evicted beyond it (default: 20gb)' },
  { name: 'MLCTL_ARTIFACTS', meaning: 'where model packages live (default: ./artifacts)' },
  { name: 'NO_COLOR', meaning: 'disable colour' },
];

/** The "Exit codes / Environment" block after every command's help. */
export function exitCodesHelp(): string {
  const exit = EXIT_CODES.map((e) => `  ${String(e.code).padEnd(5)}${e.meaning}`);
  // The column fits the longest name, with two spaces after it (MLCTL_CACHE_MAX_SIZE ran into its meaning once).
  const width = Math.max(...ENVIRONMENT.map((e) => e.name.length)) + 2;
  const env = ENVIRONMENT.map((e) => `  ${e.name.padEnd(width)}${e.meaning}`);
  return [
    '',
    'Exit codes:',
    ...exit,
    '',
    'With --json, every outcome is one JSON document on stdout: {ok, command, exitCode, …result} on success,',
    'and {ok: false, command, exitCode, error: {code, message}} on failure (error codes: docs/errors.md).',
    '',
    'Environment:',
    ...env,
  ].join('\n');
}
