// One registry of mlctl's error codes (in the spirit of fastify's lib/errors.js): each code's message template, exit
// code, HTTP status and gRPC status live in one row, so the CLI, REST and gRPC answer the same failure alike.

export const EXIT = {
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
  GATE: 3,
  INTERRUPTED: 130,
} as const;

/** What each exit code means (--help and docs/errors.md). */
export const EXIT_CODES: ReadonlyArray<{ code: number; meaning: string }> = [
  { code: EXIT.OK, meaning: 'success' },
  { code: EXIT.FAILURE, meaning: 'failure (bad input, missing files, runtime error)' },
  { code: EXIT.USAGE, meaning: 'usage error (unknown command or option, invalid or missing option value, options that do not fit together)' },
  { code: EXIT.GATE, meaning: 'a quality gate failed (evaluate --min-*/--max-*, quantize/prune/optimize --max-accuracy-drop)' },
  { code: EXIT.INTERRUPTED, meaning: 'interrupted (Ctrl-C / SIGTERM; a checkpoint is kept where one applies)' },
];

/** gRPC status codes (grpc/status.h), so the registry needs no gRPC library to name them. */
export const GRPC_STATUS = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type GrpcStatusName = keyof typeof GRPC_STATUS;

interface ErrorDef {
  exit: number;
  http: number;
  grpc: GrpcStatusName;
  /** Message template; %s placeholders are filled in order. */
  message: string;
  /** One line for the error-code table in docs/errors.md. */
  meaning: string;
  /** Seconds a client should wait before retrying (Retry-After header / trailer), unless the thrower says otherwise. */
  retryAfter?: number;
}

export const ERRORS = {
  // Command line: the invocation is wrong (exit 2). Also what a REST/gRPC client gets for the same mistake.
  USAGE: { exit: EXIT.USAGE, http: 400, grpc: 'INVALID_ARGUMENT', message: '%s', meaning: 'the command line is wrong (no command given, too many arguments …)' },
  UNKNOWN_COMMAND: { exit: EXIT.USAGE, http: 400, grpc: 'INVALID_ARGUMENT', message: '%s', meaning: 'no such command' },
  UNKNOWN_OPTION: { exit: EXIT.USAGE, http: 400, grpc: 'INVALID_ARGUMENT', message: '%s', meaning: 'no such option for this command' },
  ARGUMENT_MISSING: { exit: EXIT.USAGE, http: 400, grpc: 'INVALID_ARGUMENT', message: '%s', meaning: 'a required positional argument (e.g. the model) is missing' },
  OPTION_REQUIRED: { exit: EXIT.USAGE, http: 400, grpc: 'INVALID_ARGUMENT', message: '%s', meaning: 'a required option is missing' },
  OPTION_INVALID: { exit: EXIT.USAGE, http: 400, grpc: 'INVALID_ARGUMENT', message: '%s', meaning: 'an option value is not accepted (not a number, out of range, not one of the choices, malformed)' },
  OPTION_CONFLICT: { exit: EXIT.USAGE, http: 400, grpc: 'INVALID_ARGUMENT', message: '%s', meaning: 'options that do not go together, or that do not fit the model or the data' },
  MODEL_NAME_INVALID: { exit: EXIT.USAGE, http: 400, grpc: 'INVALID_ARGUMENT', message: '%s', meaning: 'a model name that is not a plain name (letters, digits, ., _, -)' },
  ALREADY_QUANTIZED: { exit: EXIT.USAGE, http: 400, grpc: 'FAILED_PRECONDITION', message: '%s', meaning: 'quantize on a package whose weights are already quantized (quantize its float32 version, or pass --force)' },
  RESUME_MISMATCH: { exit: EXIT.USAGE, http: 400, grpc: 'FAILED_PRECONDITION', message: '%s', meaning: 'train --resume with options that differ from the checkpoint' },
  API_KEYS_INVALID: { exit: EXIT.USAGE, http: 500, grpc: 'INTERNAL', message: 'API key configuration %s is invalid: %s', meaning: 'serve --api-key / --api-keys-file cannot be used' },
  TLS_INVALID: { exit: EXIT.USAGE, http: 500, grpc: 'INTERNAL', message: 'TLS %s cannot be used: %s', meaning: 'serve --tls-* files cannot be used' },

  // Data and images.
  DATA_DIR_MISSING: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: 'dataset folder %s does not exist: pass --data DIR pointing at a folder with one subfolder per class', meaning: 'the --data folder does not exist' },
  DATA_NOT_DIR: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: '%s is not a folder: --data expects a folder with one subfolder per class', meaning: '--data is a file where a folder is expected' },
  DATA_TOO_FEW_CLASSES: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: 'dataset %s has %s class folder(s) with images; at least 2 are needed (one subfolder per class)', meaning: 'fewer than two class folders with images' },
  DATA_CLASS_UNREADABLE: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: 'class %s has %s readable image(s) in the %s split, fewer than the %s it needs%s; fix or replace those files, add images, or remove the class folder', meaning: 'a class whose images (nearly) all fail to decode, or too few of them in a split' },
  DATA_EMPTY_CLASS: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: 'class folder %s has no images (jpg, png, webp, gif, tiff); add images or remove the folder', meaning: 'a class folder without images' },
  DATA_EMPTY_SPLIT: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: 'the %s split is empty: %s', meaning: 'the chosen split has no examples' },
  DATA_BAD_SPLIT: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: '%s', meaning: 'split fractions that cannot be applied' },
  DATA_NOT_FOUND: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: 'no detection dataset at %s: %s', meaning: 'a detection dataset whose annotation files are not where its format puts them' },
  DATA_INVALID: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: 'dataset file %s %s', meaning: 'a dataset file that cannot be read in its format (COCO JSON, YOLO data.yaml or txt, VOC XML)' },
  DATA_INVALID_BOXES: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: '%s: %s invalid annotation(s): %s; fix them, or pass --skip-invalid to leave them out (each is listed by mlctl datasets inspect)', meaning: 'boxes outside the image, without area, of an unknown class, or malformed lines; never dropped silently' },
  DATA_UNKNOWN_LABELS: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: 'the data has class(es) the model does not know: %s (model labels: %s)', meaning: 'evaluation data has classes the model was not trained on' },
  CSV_INVALID: { exit: EXIT.FAILURE, http: 400, grpc: 'INVALID_ARGUMENT', message: 'CSV file %s: %s', meaning: 'a CSV file that cannot be read as a table (listed by line and column)' },
  CSV_ENCODING: { exit: EXIT.FAILURE, http: 400, grpc: 'INVALID_ARGUMENT', message: 'CSV file %s is not valid %s: %s', meaning: 'a CSV file whose bytes are not text in its encoding (UTF-8 unless --encoding says otherwise); names the line and byte offset' },
  INPUT_TOO_LARGE: { exit: EXIT.FAILURE, http: 413, grpc: 'RESOURCE_EXHAUSTED', message: '%s would need about %s of memory to load and train, over the limit of %s (--max-memory, env MLCTL_MAX_MEMORY): %s', meaning: 'an input whose estimated memory exceeds --max-memory; refused before it is loaded' },
  FEATURES_INVALID: { exit: EXIT.FAILURE, http: 400, grpc: 'INVALID_ARGUMENT', message: 'input rows do not match model %s: %s', meaning: 'tabular rows whose columns do not match the model' },
  IMAGE_DECODE: { exit: EXIT.FAILURE, http: 400, grpc: 'INVALID_ARGUMENT', message: 'cannot decode image %s: %s', meaning: 'an image file or upload that cannot be decoded' },
  IMAGE_TOO_LARGE: { exit: EXIT.FAILURE, http: 400, grpc: 'INVALID_ARGUMENT', message: 'image %s is %s; it was not decoded (decompression-bomb guard)', meaning: 'an image over the pixel limit or the decoded-size limit (bit depth x channels; checked from its header, before decoding)' },

  // Model packages, weights, checkpoints.
  PACKAGE_NOT_FOUND: { exit: EXIT.FAILURE, http: 404, grpc: 'NOT_FOUND', message: 'no model package at %s: pass a package directory (artifacts/NAME/VERSION) or a model directory (artifacts/NAME)', meaning: 'no model package at the given name or path' },
  PACKAGE_INVALID: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: 'model package %s is invalid: %s', meaning: 'a model package whose manifest or files are unusable' },
  PACKAGE_HASH_MISMATCH: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: 'model package %s failed its integrity check: %s (the file was changed or corrupted after the package was written; re-create or restore the package)', meaning: 'a package file changed after the package was written' },
  PACKAGE_EXISTS: { exit: EXIT.FAILURE, http: 409, grpc: 'ALREADY_EXISTS', message: '%s already exists and is not empty: choose another path or pass --force', meaning: 'the output already exists (pass --force to replace it)' },
  PACKAGE_WRITE: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: '%s', meaning: 'the model package could not be written (e.g. out of disk space)' },
  PACKAGE_INPUT_MISMATCH: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: '%s', meaning: "the model's input shape differs from its manifest" },
  TASK_REQUIRED: { exit: EXIT.FAILURE, http: 400, grpc: 'FAILED_PRECONDITION', message: '%s needs a model with a task (%s); %s has none: it is a generic tensor model, served with its own named tensors over KServe V2, TF Serving :predict and Triton', meaning: 'a command or route that needs a task (labels, values, metrics) used with a generic tensor model' },
  TASK_UNKNOWN: { exit: EXIT.FAILURE, http: 400, grpc: 'FAILED_PRECONDITION', message: 'model %s has task "%s", which this mlctl does not know (it knows %s): upgrade mlctl, or use a package made for this version', meaning: "the manifest's task is not one this mlctl implements" },
  IMPORT_UNREADABLE: { exit: EXIT.FAILURE, http: 400, grpc: 'INVALID_ARGUMENT', message: 'cannot import %s: %s', meaning: 'mlctl import was given a file that is not a model it imports (ONNX, TF.js model.json, Keras .h5), or whose files are missing or damaged' },
  IMPORT_UNRUNNABLE: { exit: EXIT.FAILURE, http: 400, grpc: 'FAILED_PRECONDITION', message: 'cannot import %s: ONNX Runtime %s cannot run it (%s); nothing was written', meaning: 'mlctl import opened the model in ONNX Runtime and it failed (an operator or opset ORT lacks, a model that fails on a trial run): it would fail at serve time' },
  IMPORT_SHAPE_REQUIRED: { exit: EXIT.USAGE, http: 400, grpc: 'INVALID_ARGUMENT', message: 'cannot import %s: input %s leaves dimension(s) %s open (counting from 0, the batch), and mlctl cannot choose their size; give them with --input-shape %s', meaning: 'mlctl import needs the size of an input dimension the model leaves open (other than the batch)' },
  IMPORT_TASK_MISMATCH: { exit: EXIT.USAGE, http: 400, grpc: 'INVALID_ARGUMENT', message: 'cannot import %s as %s: %s', meaning: 'the model\'s inputs or outputs do not fit the --task / --layout / --labels given to mlctl import' },
  CHECKPOINT_WRITE: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: '%s', meaning: 'a training checkpoint could not be written' },
  CHECKPOINT_INVALID: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: '%s', meaning: 'a training checkpoint is incomplete or from another format version' },
  RUN_LOCKED: { exit: EXIT.FAILURE, http: 409, grpc: 'FAILED_PRECONDITION', message: 'run %s is in use by another mlctl process (pid %s, since %s); wait for it, or pick another --name', meaning: 'another train run with the same --name is running' },
  RESUME_NO_CHECKPOINT: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: '%s', meaning: 'train --resume found no checkpoint to continue from' },
  ENGINE_UNAVAILABLE: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: 'no %s engine can run %s: %s', meaning: 'no inference engine here can run the package (e.g. --engine onnx without a model.onnx)' },
  ENGINE_IO_UNSUPPORTED: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: 'the model (%s) takes %s and answers %s; %s', meaning: 'a model whose inputs and outputs do not fit the command (e.g. several tensors where one float tensor is fed and read)' },
  ONNX_UNVERIFIED: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: 'ONNX model %s was not run: its sha256 is %s…, expected %s…', meaning: 'ONNX bytes whose sha256 differs from the recorded one (never run)' },
  FEATURE_STORE_INVALID: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: 'feature store %s cannot be used: %s', meaning: 'the on-disk feature store is unreadable or from another backbone/format' },
  DEVICE_UNAVAILABLE: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: 'device %s is not available: %s (this onnxruntime-node %s build has: %s). %s', meaning: 'the --device asked for has no execution provider in this onnxruntime-node build, or it failed to start (never a silent fallback to cpu)' },
  BACKEND_UNAVAILABLE: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: 'backend %s is not available: %s', meaning: 'the chosen TF.js backend cannot start here' },
  WEIGHTS_UNAVAILABLE: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: '%s', meaning: 'pretrained weights cannot be found or downloaded' },
  WEIGHTS_INVALID: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: 'weights file %s cannot be used: %s', meaning: 'a weights file that does not fit the model' },
  CHECKSUM_MISMATCH: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: 'download of %s has checksum %s, expected %s; the file was discarded', meaning: 'a download whose checksum is wrong (discarded)' },
  UNSUPPORTED_LAYER: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: 'cannot convert layer %s (%s): %s', meaning: 'a layer the ONNX converter does not handle' },

  // Signatures, encryption at rest and the registry audit log (artifacts/signing.ts, encryption.ts, audit-log.ts).
  SIGNATURE_MISSING: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: 'model package %s is not signed (no %s): sign it with `mlctl sign`, or drop --require-signature to accept unsigned packages', meaning: 'an unsigned package where a signature is required (--require-signature)' },
  SIGNATURE_INVALID: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: 'model package %s has an invalid signature: %s', meaning: 'mlctl.sig does not verify, or covers another mlctl.json (the manifest or signature changed)' },
  SIGNATURE_MISMATCH: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: 'model package %s is %s, but it is stored as %s: %s', meaning: 'a signed version used from another NAME/VERSION folder than the one it was signed for (a replayed older version)' },
  SIGNER_UNTRUSTED: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: 'model package %s is signed by key %s, which is not among the trusted keys (%s): add its public key to the trusted keys only if you trust the signer', meaning: 'a valid signature by a key not in --trusted-keys' },
  SIGNING_KEY_INVALID: { exit: EXIT.USAGE, http: 500, grpc: 'INTERNAL', message: 'signing key %s cannot be used: %s', meaning: 'sign --key is not a readable Ed25519 private key (or its passphrase is missing/wrong)' },
  TRUSTED_KEYS_INVALID: { exit: EXIT.USAGE, http: 500, grpc: 'INTERNAL', message: 'trusted keys %s cannot be used: %s', meaning: '--trusted-keys / --trusted holds no usable Ed25519 public keys (or a private key)' },
  MODEL_KEY_INVALID: { exit: EXIT.USAGE, http: 500, grpc: 'INTERNAL', message: 'model key %s cannot be used: %s', meaning: '--key-file / MLCTL_MODEL_KEY is unreadable or not 32 bytes' },
  MODEL_KEY_REQUIRED: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: 'model package %s is encrypted (key %s): pass --key-file FILE or set MLCTL_MODEL_KEY', meaning: 'an encrypted package used without a key' },
  MODEL_KEY_MISMATCH: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: 'model package %s is encrypted with key %s, but the key given is %s: pass the key it was encrypted with', meaning: 'an encrypted package used with another key than its own' },
  DECRYPTION_FAILED: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: 'model package %s: %s could not be decrypted (%s); the file was changed or corrupted after encryption, nothing was loaded', meaning: 'an encrypted file failed AES-GCM authentication (changed ciphertext)' },
  PACKAGE_ENCRYPTED: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: 'model package %s is encrypted: %s', meaning: 'work that would write an encrypted package\'s weights in the clear (optimize, plain exports)' },
  PACKAGE_NOT_ENCRYPTED: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: 'model package %s is not encrypted: there is nothing to decrypt', meaning: 'decrypt of a plaintext package' },
  REGISTRY_AUDIT: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: 'registry audit log %s: %s', meaning: 'the registry audit log (artifacts/audit.jsonl) cannot be written or read' },
  REGISTRY_AUDIT_BROKEN: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: 'registry audit log %s failed verification: %s', meaning: 'models audit --verify found an edited, inserted or deleted line, or a package changed behind the log' },

  // Model registry (mlctl models, NAME:TAG references).
  VERSION_NOT_FOUND: { exit: EXIT.FAILURE, http: 404, grpc: 'NOT_FOUND', message: 'model %s has no version %s (versions: %s)', meaning: 'NAME@VERSION names a version the model does not have' },
  VERSION_REJECTED: { exit: EXIT.FAILURE, http: 409, grpc: 'FAILED_PRECONDITION', message: '%s: %s', meaning: 'serve/predict of a version a quality gate marked rejected, without --allow-rejected (a bare NAME skips rejected versions)' },
  TAG_NOT_FOUND: { exit: EXIT.FAILURE, http: 404, grpc: 'NOT_FOUND', message: 'model %s has no tag "%s" (%s)', meaning: 'NAME:TAG names a tag the model does not have (the close matches are listed)' },
  REGISTRY_LOCKED: { exit: EXIT.FAILURE, http: 503, grpc: 'UNAVAILABLE', message: 'the registry of model %s is locked by another mlctl process (%s); try again, or remove %s if no mlctl is running', meaning: 'another process held the model\'s registry lock for too long', retryAfter: 1 },
  MODEL_TAGGED: { exit: EXIT.FAILURE, http: 409, grpc: 'FAILED_PRECONDITION', message: '%s is tagged %s: untag it first, or pass --force to remove it and its tags', meaning: 'models rm of a tagged version without --force' },

  // Batch prediction (mlctl predict).
  PREDICT_INPUT: { exit: EXIT.FAILURE, http: 400, grpc: 'INVALID_ARGUMENT', message: 'predict input %s: %s', meaning: 'a predict input that does not exist or is neither an image nor a list' },
  PREDICT_OUTPUT: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: 'predict output %s: %s', meaning: 'the predict output exists (use --resume or --force), cannot be written, or was written with other columns' },
  PREDICT_RESUME: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: 'cannot resume %s: %s', meaning: 'predict --resume of a file written by another model, inputs, shard or columns, or changed after mlctl wrote it (added, edited or removed rows)' },
  PREDICT_MERGE: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: 'cannot merge shard outputs: %s', meaning: 'predict --merge of an incomplete, unfinished, mixed or overlapping set of shard outputs, or of a shard output changed after its run (rows missing or added)' },

  // Export and reports.
  EXPORT_UNSUPPORTED: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: '%s', meaning: 'the model cannot be exported to the chosen format (e.g. no dynamic batch dimension for Triton)' },
  EXPORT_CHECK_FAILED: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: '%s', meaning: 'the exported model failed its check in ONNX Runtime' },
  BUNDLE_SOURCE_MISSING: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: '%s', meaning: 'the mlctl installation lacks what a deploy bundle copies (sources or dist, package-lock.json)' },
  OUTPUT_DIR_INVALID: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: '%s', meaning: 'an output path (--out, --report) that is a file or a foreign folder' },

  // Outcomes of a run.
  GATE_FAILED: { exit: EXIT.GATE, http: 412, grpc: 'FAILED_PRECONDITION', message: '%s', meaning: 'a quality gate failed (results are still reported)' },
  INTERRUPTED: { exit: EXIT.INTERRUPTED, http: 503, grpc: 'CANCELLED', message: 'interrupted: %s', meaning: 'stopped by SIGINT/SIGTERM (a checkpoint is kept where one applies)' },
  NOT_IMPLEMENTED: { exit: EXIT.FAILURE, http: 501, grpc: 'UNIMPLEMENTED', message: '%s is not implemented yet', meaning: 'a feature that is not built yet' },
  IO: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: '%s', meaning: 'a file-system or I/O failure' },
  AUDIT_LOG: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: 'audit log %s: %s', meaning: 'the audit log cannot be written' },
  LISTEN_FAILED: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: '%s', meaning: 'a server cannot bind its address (port in use, no permission)' },
  INTERNAL: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: '%s', meaning: 'an unexpected error (run with --verbose for the stack trace; servers log it)' },

  // Serving: what REST and gRPC clients get.
  INPUT_INVALID: { exit: EXIT.FAILURE, http: 400, grpc: 'INVALID_ARGUMENT', message: '%s', meaning: 'a request whose body or tensors are malformed or do not fit the model' },
  UNSUPPORTED_MEDIA_TYPE: { exit: EXIT.FAILURE, http: 415, grpc: 'INVALID_ARGUMENT', message: '%s', meaning: 'a request body of a Content-Type serve does not read' },
  PAYLOAD_TOO_LARGE: { exit: EXIT.FAILURE, http: 413, grpc: 'RESOURCE_EXHAUSTED', message: '%s', meaning: 'a request body or upload over --body-limit' },
  MODEL_NOT_FOUND: { exit: EXIT.FAILURE, http: 404, grpc: 'NOT_FOUND', message: '%s', meaning: 'no model by that name in the artifacts root (close matches listed), or the requested model or version is not loaded' },
  MODEL_NOT_READY: { exit: EXIT.FAILURE, http: 503, grpc: 'UNAVAILABLE', message: '%s', meaning: 'the model is still warming up', retryAfter: 1 },
  MODEL_UNAVAILABLE: { exit: EXIT.FAILURE, http: 503, grpc: 'UNAVAILABLE', message: '%s', meaning: 'that model version failed to load (e.g. its package failed verification); other versions keep serving' },
  OUTPUT_NOT_FINITE: { exit: EXIT.FAILURE, http: 422, grpc: 'INVALID_ARGUMENT', message: '%s', meaning: 'the model produced NaN or Infinity for this input (never answered as a 200 with nulls)' },
  UPLOAD_LIMIT: { exit: EXIT.FAILURE, http: 413, grpc: 'RESOURCE_EXHAUSTED', message: '%s', meaning: 'a multipart upload over a per-request limit (files, fields, parts)' },
  REQUEST_TIMEOUT: { exit: EXIT.FAILURE, http: 408, grpc: 'DEADLINE_EXCEEDED', message: '%s', meaning: 'the request (headers and body) did not arrive within --request-timeout' },
  MODEL_ALREADY_LOADED: { exit: EXIT.FAILURE, http: 409, grpc: 'ALREADY_EXISTS', message: '%s', meaning: 'that model version is already loaded' },
  MODEL_LOAD_FAILED: { exit: EXIT.FAILURE, http: 400, grpc: 'FAILED_PRECONDITION', message: '%s', meaning: 'a model-control load request named a package that cannot be loaded' },
  MODEL_CONTROL_DISABLED: { exit: EXIT.FAILURE, http: 403, grpc: 'PERMISSION_DENIED', message: '%s', meaning: 'model control routes without serve --allow-model-control' },
  QUEUE_FULL: { exit: EXIT.FAILURE, http: 503, grpc: 'UNAVAILABLE', message: '%s', meaning: 'the inference queue is full (--max-queue); retry after Retry-After', retryAfter: 1 },
  SHUTTING_DOWN: { exit: EXIT.FAILURE, http: 503, grpc: 'UNAVAILABLE', message: '%s', meaning: 'the server is draining for shutdown', retryAfter: 1 },
  UNAUTHENTICATED: { exit: EXIT.FAILURE, http: 401, grpc: 'UNAUTHENTICATED', message: '%s', meaning: 'no API key, or an unknown one' },
  PERMISSION_DENIED: { exit: EXIT.FAILURE, http: 403, grpc: 'PERMISSION_DENIED', message: '%s', meaning: 'the API key may not use this model' },
  RATE_LIMITED: { exit: EXIT.FAILURE, http: 429, grpc: 'RESOURCE_EXHAUSTED', message: '%s', meaning: 'over --rate-limit, or too many wrong keys; retry after Retry-After' },
  ROUTE_NOT_FOUND: { exit: EXIT.FAILURE, http: 404, grpc: 'UNIMPLEMENTED', message: '%s', meaning: 'no such REST route (see GET /v2)' },
  // mlctl watch (the smart camera).
  WATCH_CONFIG_INVALID: { exit: EXIT.USAGE, http: 400, grpc: 'INVALID_ARGUMENT', message: '%s: %s', meaning: 'a watch config or rules file with a mistake (named by file, line and column)' },
  WATCH_FFMPEG_MISSING: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: 'camera %s needs ffmpeg (RTSP, video files and V4L2 devices are read through it) but %s; install the Debian/Ubuntu package ffmpeg (apt-get install ffmpeg) or set MLCTL_FFMPEG to its path', meaning: 'a camera needs ffmpeg and there is none' },
  WATCH_SOURCE: { exit: EXIT.FAILURE, http: 502, grpc: 'UNAVAILABLE', message: 'camera %s (%s): %s', meaning: 'a camera cannot be read (logged and retried, never fatal)' },
  WATCH_MODEL_UNSUITABLE: { exit: EXIT.FAILURE, http: 500, grpc: 'INTERNAL', message: 'model %s cannot watch cameras: %s', meaning: 'the package is not an image classifier with labels' },
  WATCH_SERVER: { exit: EXIT.FAILURE, http: 502, grpc: 'UNAVAILABLE', message: 'inference server %s: %s', meaning: 'the inference server (watch --server) is unreachable or answers errors' },
  WATCH_DELIVERY: { exit: EXIT.FAILURE, http: 502, grpc: 'UNAVAILABLE', message: '%s: delivery of event %s failed: %s', meaning: 'a notifier cannot deliver an event (retried; dead-lettered when it cannot succeed)' },
  WATCH_MQTT: { exit: EXIT.FAILURE, http: 502, grpc: 'UNAVAILABLE', message: 'MQTT broker %s: %s', meaning: 'the MQTT broker refuses or drops the connection (retried; events wait in the spool)' },
  WATCH_SPOOL: { exit: EXIT.FAILURE, http: 507, grpc: 'RESOURCE_EXHAUSTED', message: 'event spool %s: %s', meaning: 'the event spool cannot be written (e.g. disk full); events wait in memory' },
  WATCH_LOCKED: { exit: EXIT.FAILURE, http: 409, grpc: 'FAILED_PRECONDITION', message: 'state directory %s is in use by another mlctl watch (its lock %s is held); give each watcher its own --state-dir', meaning: 'another watcher uses the state directory' },
} as const satisfies Record<string, ErrorDef>;

export type ErrorCode = keyof typeof ERRORS;

export interface MlctlErrorOptions {
  cause?: unknown;
  details?: unknown;
  /** Seconds before a retry makes sense (overrides the registry's default). */
  retryAfter?: number;
}

export class MlctlError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: number;
  readonly httpStatus: number;
  /** Numeric gRPC status (see GRPC_STATUS). */
  readonly grpcStatus: number;
  readonly retryAfter?: number;
  readonly details?: unknown;

  constructor(code: ErrorCode, args: Array<string | number> = [], options: MlctlErrorOptions = {}) {
    const def: ErrorDef = ERRORS[code];
    super(format(def.message, args), { cause: options.cause });
    this.name = 'MlctlError';
    this.code = code;
    this.exitCode = def.exit;
    this.httpStatus = def.http;
    this.grpcStatus = GRPC_STATUS[def.grpc];
    this.retryAfter = options.retryAfter ?? def.retryAfter;
    this.details = options.details;
  }
}

/** A generic command-line usage error (exit 2); prefer OPTION_INVALID / OPTION_CONFLICT / OPTION_REQUIRED where they fit. */
export function usageError(message: string): MlctlError {
  return new MlctlError('USAGE', [message]);
}

function format(template: string, args: Array<string | number>): string {
  let i = 0;
  return template.replace(/%s/g, () => (i < args.length ? String(args[i++]) : '%s'));
}

/** The registry as rows, for documentation (the error-code table in docs/errors.md). */
export function errorTable(): Array<{ code: ErrorCode; exit: number; http: number; grpc: GrpcStatusName; meaning: string }> {
  return (Object.entries(ERRORS) as Array<[ErrorCode, ErrorDef]>).map(([code, d]) => ({ code, exit: d.exit, http: d.http, grpc: d.grpc, meaning: d.meaning }));
}
