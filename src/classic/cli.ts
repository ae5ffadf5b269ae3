// `mlctl train --model linear|logistic|svm`: the classic models' extra flags and their train entry point.
// The train command (src/cli/commands/train.ts) includes classicTrainOptions in its table and delegates here.
import { notImplemented } from '../cli/context.js';
import type { CommandResult, OptionSpec, RunContext } from '../cli/spec.js';

export const CLASSIC_MODELS = ['linear', 'logistic', 'svm'] as const;
export type ClassicModelName = (typeof CLASSIC_MODELS)[number];

export const classicTrainOptions: OptionSpec[] = [
  { flags: '--target <column>', description: 'CSV data: the column to predict (linear: numeric; logistic/svm: class labels)' },
  { flags: '--features <kind>', description: 'image-folder data for linear/logistic/svm: flattened pixels or cached VGG16 backbone features', choices: ['pixels', 'vgg16'], default: 'pixels' },
  { flags: '--kernel <name>', description: 'svm kernel', choices: ['linear', 'rbf', 'poly'], default: 'rbf' },
  { flags: '--C <c>', description: 'svm: penalty for margin violations (larger = fit the training data harder)', type: 'float', default: 1, min: 1e-9 },
  { flags: '--gamma <g>', description: 'svm rbf/poly kernel coefficient (default: 1 / number of features, on standardised features)', type: 'float', min: 0 },
  { flags: '--degree <d>', description: 'svm poly kernel degree', type: 'int', default: 3, min: 1, max: 10 },
  { flags: '--l2 <lambda>', description: 'linear/logistic: L2 penalty on the weights (ridge)', type: 'float', default: 0, min: 0 },
  { flags: '--solver <name>', description: 'linear: closed-form (Cholesky on the normal equations) or gd (gradient descent, for large inputs); default: picked by size', choices: ['closed-form', 'gd'] },
  { flags: '--multiclass <strategy>', description: 'svm with more than 2 classes: one-vs-rest or one-vs-one', choices: ['ovr', 'ovo'], default: 'ovr' },
  { flags: '--probability', description: 'svm: fit Platt scaling so the model outputs class probabilities instead of decision scores', type: 'boolean' },
];

export async function runClassicTrain(ctx: RunContext): Promise<CommandResult> {
  notImplemented(`mlctl train --model ${String(ctx.opts.model)}`);
}
