// The engine kinds mlctl ships, in the order `--engine auto` tries them: classic packages in their exact JS engine,
// then ONNX Runtime (every core), then TF.js in a worker thread (when asked for), then TF.js in process. Each entry
// decides cheaply whether it can run a source; its implementation (onnxruntime, tfjs …) is imported only to open.
import type { EngineOpener, EngineSource } from '../runtime/engine.js';
import { registerEngineOpener } from '../runtime/engine.js';
import type { EngineOptions } from '../runtime/engine.js';
import { formatDevice, parseDevice, sessionDefaults } from '../runtime/device.js';

/** TF.js runs on the CPU here: a GPU --device is ONNX Runtime's, never quietly run on the CPU by TF.js instead. */
function tfjsDeviceProblem(o: EngineOptions): string | undefined {
  const d = o.device === undefined ? sessionDefaults().device : parseDevice(o.device);
  if (d === undefined || d === 'auto' || d.kind === 'cpu') return undefined;
  return `TF.js runs on the CPU only; --device ${formatDevice(d)} needs ONNX Runtime (--engine onnx)`;
}

const pkgFormats = (s: EngineSource) => (s.kind === 'package' ? s.pkg.manifest.formats : undefined);

export const BUILTIN_ENGINES: readonly EngineOpener[] = [
  {
    name: 'classic',
    choices: ['auto', 'tfjs'],
    accepts: (s) => (pkgFormats(s)?.classic ? true : 'not a classic package'),
    open: async (s, o) => (await import('./classic.js')).openClassic(s, o),
  },
  {
    name: 'onnx',
    choices: ['auto', 'onnx'],
    accepts(s) {
      const f = pkgFormats(s);
      if (!f || f.onnx) return true;
      if (f.classic) return 'a classic package without model.onnx runs in the classic engine';
      return f.tfjs ? true : 'the package has neither model.onnx nor a TF.js model to convert';
    },
    open: async (s, o) => (await import('./onnx.js')).openOnnx(s, o),
  },
  {
    name: 'tfjs-thread',
    choices: ['auto', 'tfjs'],
    accepts(s, o) {
      if (!o.worker) return 'used only when a worker thread is asked for';
      const device = tfjsDeviceProblem(o);
      if (device) return device;
      return pkgFormats(s)?.tfjs ? true : 'a worker thread loads TF.js models from packages only';
    },
    open: async (s) => (await import('./tfjs-thread.js')).openTfjsThread(s),
  },
  {
    name: 'tfjs',
    choices: ['auto', 'tfjs'],
    accepts(s, o) {
      if (s.kind === 'onnx') return 'an ONNX model runs in onnxruntime';
      const device = tfjsDeviceProblem(o);
      if (device) return device;
      return s.kind === 'model' || pkgFormats(s)?.tfjs ? true : 'the package has no TF.js model (formats.tfjs)';
    },
    open: async (s) => (await import('./tfjs.js')).openTfjs(s),
  },
];

for (const opener of BUILTIN_ENGINES) registerEngineOpener(opener);
