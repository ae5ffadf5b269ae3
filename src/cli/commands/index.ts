// The command table: every mlctl subcommand, in the order --help lists them. Tables come from the light modules
// beside this one; each runner is imported (dynamic import) only when its command runs.
import { defineCommand, lazy, type AnyCommand } from '../spec.js';
import { cacheCommand, cacheLsCommand, cachePruneCommand } from './cache.js';
import { datasetsCommand, inspectCommand, synthCommand } from './datasets.js';
import { evaluateCommand } from './evaluate.js';
import { importCommand } from './import.js';
import { exportCommand } from './export.js';
import { optimizeCommand, pruneCommand, quantizeCommand, tuneCommand } from './optimize.js';
import { modelsCommand, modelsDiffCommand, modelsGcCommand, modelsLsCommand, modelsRmCommand, modelsShowCommand, modelsTagCommand, modelsUntagCommand } from './models.js';
import { predictCommand } from './predict.js';
import { serveCommand } from './serve.js';
import { trainCommand } from './train.js';
import { decryptCommand, encryptCommand } from './encrypt.js';
import { keysCommand, keysGenerateCommand } from './keys.js';
import { modelsAuditCommand } from './models-audit.js';
import { signCommand, verifyCommand } from './sign.js';
import { watchCommand } from './watch.js';

export const COMMANDS: AnyCommand[] = [
  lazy(trainCommand, () => import('../run/train.js').then((m) => m.run)),
  lazy(optimizeCommand, () => import('../run/optimize.js').then((m) => m.optimize)),
  lazy(pruneCommand, () => import('../run/optimize.js').then((m) => m.prune)),
  lazy(quantizeCommand, () => import('../run/optimize.js').then((m) => m.quantize)),
  lazy(tuneCommand, () => import('../run/optimize.js').then((m) => m.tune)),
  lazy(evaluateCommand, () => import('../run/evaluate.js').then((m) => m.run)),
  lazy(exportCommand, () => import('../run/export.js').then((m) => m.run)),
  lazy(serveCommand, () => import('../run/serve.js').then((m) => m.run)),
  lazy(importCommand, () => import('../run/import.js').then((m) => m.run)),
  lazy(predictCommand, () => import('../run/predict.js').then((m) => m.run)),
  lazy(watchCommand, () => import('../run/watch.js').then((m) => m.run)),
  defineCommand({
    ...modelsCommand,
    subcommands: [
      lazy(modelsLsCommand, () => import('../run/models.js').then((m) => m.ls)),
      lazy(modelsShowCommand, () => import('../run/models.js').then((m) => m.show)),
      lazy(modelsDiffCommand, () => import('../run/models.js').then((m) => m.diff)),
      lazy(modelsTagCommand, () => import('../run/models.js').then((m) => m.tag)),
      lazy(modelsUntagCommand, () => import('../run/models.js').then((m) => m.untag)),
      lazy(modelsRmCommand, () => import('../run/models.js').then((m) => m.rm)),
      lazy(modelsGcCommand, () => import('../run/models.js').then((m) => m.gc)),
      lazy(modelsAuditCommand, () => import('../run/models-audit.js').then((m) => m.audit)),
    ],
  }),
  defineCommand({
    ...datasetsCommand,
    subcommands: [
      lazy(synthCommand, () => import('../run/datasets.js').then((m) => m.synth)),
      lazy(inspectCommand, () => import('../run/datasets.js').then((m) => m.inspect)),
    ],
  }),
  defineCommand({
    ...cacheCommand,
    subcommands: [lazy(cacheLsCommand, () => import('../run/cache.js').then((m) => m.ls)), lazy(cachePruneCommand, () => import('../run/cache.js').then((m) => m.prune))],
  }),
  lazy(signCommand, () => import('../run/sign.js').then((m) => m.sign)),
  lazy(verifyCommand, () => import('../run/sign.js').then((m) => m.verify)),
  lazy(encryptCommand, () => import('../run/encrypt.js').then((m) => m.encrypt)),
  lazy(decryptCommand, () => import('../run/encrypt.js').then((m) => m.decrypt)),
  defineCommand({ ...keysCommand, subcommands: [lazy(keysGenerateCommand, () => import('../run/keys.js').then((m) => m.generate))] }),
];
