// One registry of mlctl's error codes, messages and exit codes (in the spirit of fastify's lib/errors.js).
// Every user-facing failure is an MlctlError so the CLI can print one clear line and exit with the right code.

export const EXIT = {
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
  GATE: 3,
  INTERRUPTED: 130,
} as const;

interface ErrorDef {
  exit: number;
  /** Message template; %s placeholders are filled in order. */
  message: string;
}

export const ERRORS = {
  USAGE: { exit: EXIT.USAGE, message: '%s' },
  NOT_IMPLEMENTED: { exit: EXIT.FAILURE, message: '%s is not implemented yet' },
  DATA_DIR_MISSING: { exit: EXIT.FAILURE, message: 'dataset folder %s does not exist: pass --data DIR pointing at a folder with one subfolder per class' },
  DATA_NOT_DIR: { exit: EXIT.FAILURE, message: '%s is not a folder: --data expects a folder with one subfolder per class' },
  DATA_TOO_FEW_CLASSES: { exit: EXIT.FAILURE, message: 'dataset %s has %s class folder(s) with images; at least 2 are needed (one subfolder per class)' },
  DATA_EMPTY_CLASS: { exit: EXIT.FAILURE, message: 'class folder %s has no images (jpg, png, webp, gif, tiff); add images or remove the folder' },
  DATA_EMPTY_SPLIT: { exit: EXIT.FAILURE, message: 'the %s split is empty: %s' },
  DATA_BAD_SPLIT: { exit: EXIT.FAILURE, message: '%s' },
  DATA_UNKNOWN_LABELS: { exit: EXIT.FAILURE, message: 'the data has class(es) the model does not know: %s (model labels: %s)' },
  IMAGE_DECODE: { exit: EXIT.FAILURE, message: 'cannot decode image %s: %s' },
  IMAGE_TOO_LARGE: { exit: EXIT.FAILURE, message: 'image %s has more than %s pixels; it was not decoded (decompression-bomb guard)' },
  PACKAGE_NOT_FOUND: { exit: EXIT.FAILURE, message: 'no model package at %s: pass a package directory (artifacts/NAME/VERSION) or a model directory (artifacts/NAME)' },
  PACKAGE_INVALID: { exit: EXIT.FAILURE, message: 'model package %s is invalid: %s' },
  PACKAGE_HASH_MISMATCH: { exit: EXIT.FAILURE, message: 'model package %s failed its integrity check: %s (the file was changed or corrupted after the package was written; re-create or restore the package)' },
  PACKAGE_EXISTS: { exit: EXIT.FAILURE, message: '%s already exists and is not empty: choose another path or pass --force' },
  ENGINE_UNAVAILABLE: { exit: EXIT.FAILURE, message: 'no %s engine can run %s: %s' },
  ONNX_UNVERIFIED: { exit: EXIT.FAILURE, message: 'ONNX model %s was not run: its sha256 is %s…, expected %s…' },
  FEATURE_STORE_INVALID: { exit: EXIT.FAILURE, message: 'feature store %s cannot be used: %s' },
  BACKEND_UNAVAILABLE: { exit: EXIT.FAILURE, message: 'backend %s is not available: %s' },
  WEIGHTS_UNAVAILABLE: { exit: EXIT.FAILURE, message: '%s' },
  WEIGHTS_INVALID: { exit: EXIT.FAILURE, message: 'weights file %s cannot be used: %s' },
  CHECKSUM_MISMATCH: { exit: EXIT.FAILURE, message: 'download of %s has checksum %s, expected %s; the file was discarded' },
  UNSUPPORTED_LAYER: { exit: EXIT.FAILURE, message: 'cannot convert layer %s (%s): %s' },
  GATE_FAILED: { exit: EXIT.GATE, message: '%s' },
  INTERRUPTED: { exit: EXIT.INTERRUPTED, message: 'interrupted: %s' },
  IO: { exit: EXIT.FAILURE, message: '%s' },
  CSV_INVALID: { exit: EXIT.FAILURE, message: 'CSV file %s: %s' },
  FEATURES_INVALID: { exit: EXIT.FAILURE, message: 'input rows do not match model %s: %s' },
  API_KEYS_INVALID: { exit: EXIT.USAGE, message: 'API key configuration %s is invalid: %s' },
  TLS_INVALID: { exit: EXIT.USAGE, message: 'TLS %s cannot be used: %s' },
  AUDIT_LOG: { exit: EXIT.FAILURE, message: 'audit log %s: %s' },
} satisfies Record<string, ErrorDef>;

export type ErrorCode = keyof typeof ERRORS;

export class MlctlError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: number;
  readonly details?: unknown;

  constructor(code: ErrorCode, args: Array<string | number> = [], options: { cause?: unknown; details?: unknown } = {}) {
    super(format(ERRORS[code].message, args), { cause: options.cause });
    this.name = 'MlctlError';
    this.code = code;
    this.exitCode = ERRORS[code].exit;
    this.details = options.details;
  }
}

export function usageError(message: string): MlctlError {
  return new MlctlError('USAGE', [message]);
}

function format(template: string, args: Array<string | number>): string {
  let i = 0;
  return template.replace(/%s/g, () => (i < args.length ? String(args[i++]) : '%s'));
}

/** Exit code for any thrown value: MlctlError carries its own, anything else is a plain failure. */
export function exitCodeOf(err: unknown): number {
  return err instanceof MlctlError ? err.exitCode : EXIT.FAILURE;
}
