// Per-file test setup: the built-in engine kinds, registered as the CLI registers them at start-up.
import '../../src/engines/index.js';
