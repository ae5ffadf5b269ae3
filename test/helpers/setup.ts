// Per-file test setup: the built-in engine kinds, registered as the CLI registers them at start-up.
import '../../src/runtime/ort-env.js'; // first: test files import onnxruntime-node directly too
import '../../src/engines/index.js';
