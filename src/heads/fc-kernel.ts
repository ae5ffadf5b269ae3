// fc1's weight gradient fused with its Keras Adam update, in WebAssembly SIMD: the one step of head training that
// ONNX Runtime cannot do well from Node (its results would come back as fresh 100 MB copies, and Adam as a dozen
// separate elementwise passes). One pass over the weights: g = xᵀ·dz (zero inputs skipped), then m, v, w updated.
// The WAT below is the source; scripts/build-kernels.ts assembles it into fc-kernel-wasm.ts (a test checks they agree).
import { FC_ADAM_WASM_BASE64 } from './fc-kernel-wasm.js';

/** Weight rows are padded to a multiple of this many floats (8 SIMD accumulators of 4). */
export const FC_BLOCK = 32;
const ACCS = FC_BLOCK / 4;

const get = (name: string) => `(local.get $${name})`;
const set = (name: string, value: string) => `(local.set $${name} ${value})`;
const add = (a: string, b: string) => `(i32.add ${a} ${b})`;
const floats = (i: string) => `(i32.shl ${i} (i32.const 2))`;
const splat = (name: string) => `(f32x4.splat ${get(name)})`;

/** acc_q += s · dz[k, jb + 4q …] for the 8 accumulators. */
const accumulate = Array.from({ length: ACCS }, (_, q) => set(`a${q}`, `(f32x4.add ${get(`a${q}`)} (f32x4.mul ${get('s')} (v128.load offset=${q * 16} ${get('d')})))`)).join('\n        ');

/** Keras Adam on 4 weights at byte offset e (+off) with gradient g: m ← β1·m + (1-β1)·g, v ← β2·v + (1-β2)·g², w ← w - lrₜ·m/(√v + ε). */
function adam4(q: number): string {
  const at = (arr: string) => add(get(arr), get('e'));
  const g = get(`a${q}`);
  return `
      ${set('e', add(get('rowOff'), `(i32.add ${floats(get('jb'))} (i32.const ${q * 16}))`))}
      ${set('mm', `(f32x4.add (f32x4.mul ${splat('b1')} (v128.load ${at('m')})) (f32x4.mul ${splat('c1')} ${g}))`)}
      (v128.store ${at('m')} ${get('mm')})
      ${set('vv', `(f32x4.add (f32x4.mul ${splat('b2')} (v128.load ${at('v')})) (f32x4.mul ${splat('c2')} (f32x4.mul ${g} ${g})))`)}
      (v128.store ${at('v')} ${get('vv')})
      (v128.store ${at('w')} (f32x4.sub (v128.load ${at('w')}) (f32x4.div (f32x4.mul ${splat('lr')} ${get('mm')}) (f32x4.add (f32x4.sqrt ${get('vv')}) ${splat('eps')}))))`;
}

/**
 * The kernel's WebAssembly text. adamOuter(w, m, v, x, xStride, dz, rows, units, n, nz, lr, b1, c1, b2, c2, eps):
 * byte offsets w, m, v of [rows, units] (units a multiple of FC_BLOCK), x of [n, xStride] (column i feeds row i),
 * dz of [n, units], nz of 8·n bytes of scratch; lr is Adam's bias-corrected lrₜ, c1 = 1-β1, c2 = 1-β2.
 */
export function fcAdamWat(): string {
  const accs = Array.from({ length: ACCS }, (_, q) => `(local $a${q} v128)`).join(' ');
  const zero = Array.from({ length: ACCS }, (_, q) => set(`a${q}`, '(v128.const i32x4 0 0 0 0)')).join(' ');
  return `(module
  (import "env" "memory" (memory 1 65536))
  (func (export "adamOuter")
    (param $w i32) (param $m i32) (param $v i32) (param $x i32) (param $xStride i32) (param $dz i32)
    (param $rows i32) (param $units i32) (param $n i32) (param $nz i32)
    (param $lr f32) (param $b1 f32) (param $c1 f32) (param $b2 f32) (param $c2 f32) (param $eps f32)
    (local $i i32) (local $k i32) (local $cnt i32) (local $xv f32) (local $t i32) (local $jb i32) (local $rowOff i32)
    (local $e i32) (local $d i32) (local $s v128) (local $mm v128) (local $vv v128) ${accs}
    (block $rowsDone (loop $rowLoop
      (br_if $rowsDone (i32.ge_u ${get('i')} ${get('rows')}))
      ;; the row's nonzero inputs as (dz row byte offset, x value) pairs: zero features cost nothing
      ${set('cnt', '(i32.const 0)')} ${set('k', '(i32.const 0)')}
      (block $kDone (loop $kLoop
        (br_if $kDone (i32.ge_u ${get('k')} ${get('n')}))
        ${set('xv', `(f32.load ${add(get('x'), floats(add(`(i32.mul ${get('k')} ${get('xStride')})`, get('i'))))})`)}
        (if (f32.ne ${get('xv')} (f32.const 0)) (then
          ${set('t', add(get('nz'), `(i32.shl ${get('cnt')} (i32.const 3))`))}
          (i32.store ${get('t')} ${add(get('dz'), floats(`(i32.mul ${get('k')} ${get('units')})`))})
          (f32.store offset=4 ${get('t')} ${get('xv')})
          ${set('cnt', add(get('cnt'), '(i32.const 1)'))}))
        ${set('k', add(get('k'), '(i32.const 1)'))}
        (br $kLoop)))
      ${set('rowOff', floats(`(i32.mul ${get('i')} ${get('units')})`))}
      ${set('jb', '(i32.const 0)')}
      (block $jDone (loop $jLoop
        (br_if $jDone (i32.ge_u ${get('jb')} ${get('units')}))
        ${zero}
        ${set('k', '(i32.const 0)')}
        (block $nDone (loop $nLoop
          (br_if $nDone (i32.ge_u ${get('k')} ${get('cnt')}))
          ${set('t', add(get('nz'), `(i32.shl ${get('k')} (i32.const 3))`))}
          ${set('s', `(f32x4.splat (f32.load offset=4 ${get('t')}))`)}
          ${set('d', add(`(i32.load ${get('t')})`, floats(get('jb'))))}
          ${accumulate}
          ${set('k', add(get('k'), '(i32.const 1)'))}
          (br $nLoop)))
        ${Array.from({ length: ACCS }, (_, q) => adam4(q)).join('\n')}
        ${set('jb', add(get('jb'), `(i32.const ${FC_BLOCK})`))}
        (br $jLoop)))
      ${set('i', add(get('i'), '(i32.const 1)'))}
      (br $rowLoop)))))
`;
}

/** The slice of the WebAssembly JS API used here (Node's types do not declare it). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WasmApi {
  Memory: new (d: { initial: number; maximum: number }) => WasmMemory;
  compile(bytes: Uint8Array): Promise<object>;
  instantiate(module: object, imports: object): Promise<{ exports: Record<string, unknown> }>;
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

export interface FcAdamKernel {
  readonly memory: WasmMemory;
  adamOuter(w: number, m: number, v: number, x: number, xStride: number, dz: number, rows: number, units: number, n: number, nz: number, lr: number, b1: number, c1: number, b2: number, c2: number, eps: number): void;
}

let compiled: Promise<object> | undefined;

/** An instance of the kernel over a fresh memory of `bytes` (rounded up to 64 KiB pages; at most 4 GiB). */
export async function instantiateFcAdam(bytes: number): Promise<FcAdamKernel> {
  const pages = Math.ceil(bytes / 65536);
  if (pages > 65536) throw new RangeError(`the head's fc1 shard needs ${(bytes / 2 ** 30).toFixed(1)} GiB; WebAssembly memories hold at most 4 GiB`);
  compiled ??= wasm.compile(Buffer.from(FC_ADAM_WASM_BASE64, 'base64'));
  const memory = new wasm.Memory({ initial: Math.max(1, pages), maximum: 65536 });
  const instance = await wasm.instantiate(await compiled, { env: { memory } });
  return { memory, adamOuter: instance.exports.adamOuter as FcAdamKernel['adamOuter'] };
}
