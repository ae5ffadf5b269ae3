// What the global setup found: `tools.pythonOnnx` etc. are true when that Debian package is installed.
// Use as `it.skipIf(!tools.ffmpeg)(…)` so a machine with only Node skips instead of failing. Under CI (`CI=true`)
// reading a missing tool throws, naming its package: the test file that would have skipped fails the run instead.
import { spawnSync } from 'node:child_process';
import { inject } from 'vitest';
import { ciMissingMessage, isCi, PYTHON, SYSTEM_TOOLS, type ToolAvailability, type ToolName } from './system-tools.js';

export { CHROMIUM, PYTHON } from './system-tools.js';

/** The probed availability; under CI a missing tool cannot be read as "skip", only as a failure. */
export function requireToolsInCi(found: ToolAvailability, ci: boolean): ToolAvailability {
  if (!ci) return found;
  return new Proxy(found, {
    get(target, key, receiver) {
      if (typeof key === 'string' && key in SYSTEM_TOOLS && !target[key as ToolName]) throw new Error(ciMissingMessage(key as ToolName));
      return Reflect.get(target, key, receiver);
    },
  });
}

export const tools = requireToolsInCi(inject('tools'), isCi());

export interface OnnxCheck {
  /** The checker's exit status: 0 when the model passes. */
  status: number | null;
  /** What the checker printed on failure ('' when the model passes). */
  stderr: string;
  /** How many metadata_props the model carries (NaN when it did not get that far). */
  metadataProps: number;
}

/**
 * The ONNX reference checker (python3-onnx `onnx.checker.check_model(…, full_check=True)`) on a model file.
 * Only in tests guarded by `it.skipIf(!tools.pythonOnnx)`.
 */
export function onnxCheck(file: string): OnnxCheck {
  const script = 'import onnx,sys; m=onnx.load(sys.argv[1]); onnx.checker.check_model(m, full_check=True); print(len(m.metadata_props))';
  const r = spawnSync(PYTHON, ['-c', script, file], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr, metadataProps: r.status === 0 ? Number(r.stdout.trim()) : NaN };
}
