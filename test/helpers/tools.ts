// What the global setup found: `tools.pythonOnnx` etc. are true when that Debian package is installed.
// Use as `it.skipIf(!tools.ffmpeg)(…)` so a machine with only Node skips instead of failing.
import { inject } from 'vitest';

export { CHROMIUM, PYTHON } from './system-tools.js';
export const tools = inject('tools');
