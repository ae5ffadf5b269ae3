// Adam over TF.js variables in one WebAssembly SIMD pass per variable, on the wasm backend's own heap: the kernel
// imports that memory, updates the moments in place and writes the new weights into a fresh tensor the variable then
// takes (a new data id: XNNPACK caches operators with packed weights by the weights' id, so weights changed in place
// would be stale in the next forward pass). TF.js's optimizer runs a dozen elementwise kernels
// per variable (each a full pass over memory); on the millions of weights of a Flatten head and unfrozen blocks that
// was ~40% of a fine-tune step (27x slower than this pass). Same formula as tf.train.adam: m̂ = m/(1-β1ᵗ),
// v̂ = v/(1-β2ᵗ), w -= lr·m̂/(√v̂ + ε). Other backends use tf.train.adam itself.
// The WAT below is the source; scripts/build-kernels.ts assembles it into adam-kernel-wasm.ts (a test checks they agree).
import * as tf from '@tensorflow/tfjs';
import { KERAS_ADAM } from '../heads/head.js';
import { ADAM_WASM_BASE64 } from './adam-kernel-wasm.js';

/**
 * adam(w, out, g, m, v, n, a, b, b1, c1, b2, c2, eps): byte offsets of n floats each; a = lr/(1-β1ᵗ), b = 1/√(1-β2ᵗ),
 * c1 = 1-β1, c2 = 1-β2. m ← β1·m + c1·g; v ← β2·v + c2·g²; out ← w − a·m/(b·√v + ε). Four lanes at a time, then the rest.
 */
export function adamWat(): string {
  const lane = (t: 'v' | 's') => {
    const [load, store, splat, op] = t === 'v' ? ['v128.load', 'v128.store', (x: string) => `(f32x4.splat ${x})`, 'f32x4'] : ['f32.load', 'f32.store', (x: string) => x, 'f32'];
    const at = (p: string) => `(i32.add (local.get $${p}) (local.get $i))`;
    return `
      (local.set $g${t} (${load} ${at('g')}))
      (local.set $m${t} (${op}.add (${op}.mul ${splat('(local.get $b1)')} (${load} ${at('m')})) (${op}.mul ${splat('(local.get $c1)')} (local.get $g${t}))))
      (${store} ${at('m')} (local.get $m${t}))
      (local.set $v${t} (${op}.add (${op}.mul ${splat('(local.get $b2)')} (${load} ${at('v')})) (${op}.mul ${splat('(local.get $c2)')} (${op}.mul (local.get $g${t}) (local.get $g${t})))))
      (${store} ${at('v')} (local.get $v${t}))
      (${store} ${at('out')} (${op}.sub (${load} ${at('w')}) (${op}.div (${op}.mul ${splat('(local.get $a)')} (local.get $m${t})) (${op}.add (${op}.mul (${op}.sqrt (local.get $v${t})) ${splat('(local.get $b)')}) ${splat('(local.get $eps)')}))))`;
  };
  return `(module
  (import "env" "memory" (memory 1 65536))
  (func (export "adam")
    (param $w i32) (param $out i32) (param $g i32) (param $m i32) (param $v i32) (param $n i32)
    (param $a f32) (param $b f32) (param $b1 f32) (param $c1 f32) (param $b2 f32) (param $c2 f32) (param $eps f32)
    (local $i i32) (local $end i32) (local $vecEnd i32)
    (local $gv v128) (local $mv v128) (local $vv v128) (local $gs f32) (local $ms f32) (local $vs f32)
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (local.set $vecEnd (i32.and (local.get $end) (i32.const -16)))
    (block $vDone (loop $vLoop
      (br_if $vDone (i32.ge_u (local.get $i) (local.get $vecEnd)))${lane('v')}
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br $vLoop)))
    (block $sDone (loop $sLoop
      (br_if $sDone (i32.ge_u (local.get $i) (local.get $end)))${lane('s')}
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $sLoop)))))
`;
}

/** The slice of the WebAssembly JS API used here (Node's types do not declare it). */
interface WasmApi {
  Memory: new (d: { initial: number; maximum?: number }) => object;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi & { Memory: { prototype: object } } }).WebAssembly;

type AdamFn = (w: number, out: number, g: number, m: number, v: number, n: number, a: number, b: number, b1: number, c1: number, b2: number, c2: number, eps: number) => void;

/** What is read of tfjs-backend-wasm's internals: its module's memory and where a tensor's data sits in it. */
interface WasmBackendInternals {
  wasm: { asm?: { memory?: unknown } };
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  /** Allocate (without filling) a tensor's storage on the heap. */
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
}

const kernels = new WeakMap<object, AdamFn>();

/** The kernel instantiated over the wasm backend's memory, or undefined when that memory is not reachable. */
function kernelFor(be: WasmBackendInternals): AdamFn | undefined {
  const memory = be.wasm?.asm?.memory;
  if (!memory || !(memory instanceof (wasm.Memory as unknown as new () => object))) return undefined;
  let fn = kernels.get(memory);
  if (!fn) {
    const module = new wasm.Module(Buffer.from(ADAM_WASM_BASE64, 'base64'));
    fn = new wasm.Instance(module, { env: { memory } }).exports.adam as AdamFn;
    kernels.set(memory, fn);
  }
  return fn;
}

export interface TfjsAdam {
  /** "fused wasm" or "tf.train.adam", for logs. */
  readonly kind: string;
  /** One update at `lr` with gradients by variable name (the caller disposes them). */
  apply(grads: tf.NamedTensorMap, lr: number): void;
  dispose(): void;
}

/**
 * Adam (Keras's β1 0.9, β2 0.999, ε 1e-7) over `vars`: on wasm the fused kernel, elsewhere (or with `fused: false`,
 * the path benchmarks compare against) tf.train.adam. Both follow tf.train.adam's formula.
 */
export function tfjsAdam(vars: tf.Variable[], opts: { fused?: boolean } = {}): TfjsAdam {
  const be = tf.backend() as unknown as WasmBackendInternals;
  const kernel = opts.fused !== false && tf.getBackend() === 'wasm' ? kernelFor(be) : undefined;
  if (!kernel) {
    const optimizer = tf.train.adam(1e-3, KERAS_ADAM.beta1, KERAS_ADAM.beta2, KERAS_ADAM.epsilon);
    return {
      kind: 'tf.train.adam',
      apply(grads, lr) {
        // TF.js's Adam reads its rate on every update: the schedule's rate for this step.
        (optimizer as unknown as { learningRate: number }).learningRate = lr;
        optimizer.applyGradients(grads as unknown as Parameters<typeof optimizer.applyGradients>[0]);
      },
      dispose: () => optimizer.dispose(),
    };
  }
  const { beta1: b1, beta2: b2, epsilon: eps } = KERAS_ADAM;
  const moments = vars.map((v) => [tf.zeros(v.shape), tf.zeros(v.shape)] as const);
  const offset = (t: { dataId: object }) => be.dataIdMap.get(t.dataId)!.memoryOffset;
  let t = 0;
  return {
    kind: 'fused wasm',
    apply(grads, lr) {
      t++;
      const a = lr / (1 - Math.pow(b1, t));
      const b = 1 / Math.sqrt(1 - Math.pow(b2, t));
      vars.forEach((v, i) => {
        const g = grads[v.name];
        if (!g) return;
        const [m, s] = moments[i]!;
        const out = tf.engine().makeTensorFromTensorInfo(be.makeOutput(v.shape, 'float32'));
        kernel(offset(v), offset(out), offset(g), offset(m), offset(s), v.size, a, b, b1, 1 - b1, b2, 1 - b2, eps);
        v.assign(out);
        out.dispose();
      });
    },
    dispose: () => tf.dispose(moments.flat()),
  };
}
