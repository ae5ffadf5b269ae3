// ONNX Runtime for every mlctl module that runs a session (engines, the head trainer, calibration, export checks):
// the add-on loaded after its environment is set (runtime/ort-env.ts), its version, and the one set of session options.
import './ort-env.js'; // before onnxruntime-node initialises: no telemetry files or uploads
import * as ort from 'onnxruntime-node';
import { createRequire } from 'node:module';
import os from 'node:os';

// The process-wide ORT logger (messages outside a session) at errors only, like every session below: ORT writes its
// warnings to stderr with colour codes whether or not stderr is a terminal.
ort.env.logLevel = 'error';

const require = createRequire(import.meta.url);
export const ORT_VERSION = (require('onnxruntime-node/package.json') as { version: string }).version;

export { ort };

/** The session options every mlctl ONNX session uses; exported so benchmarks compare like with like. */
export function onnxSessionOptions(threads = os.availableParallelism()): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    // ORT's own warnings (e.g. about serialising NCHWc-optimised graphs) are not the user's business: errors only.
    logSeverityLevel: 3,
    // Idle pool threads sleep instead of spin-waiting: CI runners and serve hosts share their cores, and mlctl's
    // runs are long enough (conv nets) that the wake-up cost does not show.
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
}
