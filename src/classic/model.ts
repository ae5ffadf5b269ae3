// The classic model file (classic-model.json) and the one prediction routine every consumer uses: raw encoded
// feature rows → standardised → linear/softmax/SVM output. Training, the inference engine and tests all call predict().
import { MlctlError } from '../errors.js';
import { softmax } from '../tasks/scores.js';
import type { Standardization } from './linalg.js';
import { svmDecisions, svmOutput, type SvmModel } from './svm.js';

export const CLASSIC_FILE = 'classic-model.json';
export const CLASSIC_FORMAT = 'mlctl-classic';
export const CLASSIC_FORMAT_VERSION = 1;

export type ClassicKind = 'linear' | 'logistic' | 'svm';

export interface ClassicModel {
  format: typeof CLASSIC_FORMAT;
  formatVersion: number;
  model: ClassicKind;
  task: 'classification' | 'regression';
  /** Width of an input row (encoded features / flattened pixels) before standardisation. */
  inputSize: number;
  standardization: Standardization;
  output: { kind: 'regression' | 'probabilities' | 'scores'; size: number };
  /** linear (identity) and logistic (softmax): out x inputSize weights on standardised features. */
  linear?: { weights: number[][]; bias: number[]; activation: 'identity' | 'softmax' };
  svm?: SvmModel;
}

export function validateClassicModel(value: unknown, where: string): ClassicModel {
  const fail = (why: string): never => {
    throw new MlctlError('PACKAGE_INVALID', [where, `${CLASSIC_FILE} ${why}`]);
  };
  const m = value as Partial<ClassicModel>;
  if (!m || typeof m !== 'object' || m.format !== CLASSIC_FORMAT) fail('is not an mlctl classic model');
  if ((m.formatVersion ?? 0) > CLASSIC_FORMAT_VERSION) fail(`has format version ${m.formatVersion}, newer than this mlctl understands; upgrade mlctl`);
  if (!Number.isInteger(m.inputSize) || m.inputSize! < 1) fail('has no valid inputSize');
  const s = m.standardization;
  if (!s || s.mean?.length !== m.inputSize || s.scale?.length !== m.inputSize) fail('has no standardisation matching its input size');
  if (m.model === 'svm' ? !m.svm : !m.linear) fail(`has no parameters for model "${m.model}"`);
  return m as ClassicModel;
}

/** Predict `batch` rows packed in `x` (batch * inputSize). Returns batch * output.size values. */
export function predict(model: ClassicModel, x: ArrayLike<number>, batch: number): Float32Array {
  const d = model.inputSize;
  const k = model.output.size;
  if (x.length !== batch * d) throw new MlctlError('FEATURES_INVALID', ['', `expected ${batch} x ${d} values, got ${x.length}`]);
  const out = new Float32Array(batch * k);
  const z = new Float64Array(d);
  const { mean, scale } = model.standardization;
  const kcache = model.svm ? new Float64Array(model.svm.supportVectors.length) : undefined;
  for (let n = 0; n < batch; n++) {
    for (let j = 0; j < d; j++) z[j] = (x[n * d + j]! - mean[j]!) / scale[j]!;
    if (model.linear) {
      const { weights, bias, activation } = model.linear;
      const s = new Float64Array(k);
      for (let c = 0; c < k; c++) {
        let v = bias[c]!;
        const w = weights[c]!;
        for (let j = 0; j < d; j++) v += w[j]! * z[j]!;
        s[c] = v;
      }
      out.set(activation === 'softmax' ? softmax(s) : s, n * k);
    } else {
      out.set(svmOutput(model.svm!, svmDecisions(model.svm!, z, kcache)), n * k);
    }
  }
  return out;
}

/** Parameter count for the manifest's architecture summary. */
export function parameterCount(model: ClassicModel): number {
  if (model.linear) return model.linear.weights.length * (model.inputSize + 1);
  const svm = model.svm!;
  return svm.supportVectors.length * model.inputSize + svm.machines.reduce((a, m) => a + m.coef.length + 1 + (m.w?.length ?? 0), 0);
}
