// The task registry: a manifest's `task` → the module that owns that kind of model. Commands ask taskOf/requireTask
// instead of testing manifest fields; a new kind of model is one more folder here and one more entry below.
import type { Manifest } from '../artifacts/manifest.js';
import { MlctlError } from '../errors.js';
import { imageClassification, tabularClassification } from './classification/index.js';
import { detection } from './detection/index.js';
import { tabularRegression } from './regression/index.js';
import type { AnyTask } from './types.js';

export type { AnyTask, DetectionLimits, InputKind, MetricsAccumulator, ResultContext, ReportRendering, ReportSection, RowRendering, ServeRendering, Task, TaskModel, WatchRendering } from './types.js';

const TASKS: readonly AnyTask[] = [imageClassification, tabularClassification, tabularRegression, detection];

/** Every task this mlctl implements, by manifest name. */
export const TASK_IDS: readonly string[] = TASKS.map((t) => t.id);

/** The task of that name, or undefined. */
export function taskNamed(id: string): AnyTask | undefined {
  return TASKS.find((t) => t.id === id);
}

type TaskRef = Pick<Manifest, 'name' | 'version' | 'task'>;

/** The task a model belongs to; undefined for a model without one (a generic tensor model). TASK_UNKNOWN for a task this mlctl lacks. */
export function taskOf(m: TaskRef & { task: string }): AnyTask;
export function taskOf(m: TaskRef): AnyTask | undefined;
export function taskOf(m: TaskRef): AnyTask | undefined {
  if (m.task === undefined) return undefined;
  const task = taskNamed(m.task);
  if (!task) throw new MlctlError('TASK_UNKNOWN', [`${m.name} v${m.version}`, m.task, TASK_IDS.join(', ')]);
  return task;
}

/**
 * The task `what` (a command or route) needs, with the manifest sections it owns checked: TASK_REQUIRED for a
 * generic tensor model, PACKAGE_INVALID when the sections do not fit the task.
 */
export function requireTask(m: Manifest, what: string, where = `${m.name} v${m.version}`): AnyTask {
  const task = taskOf(m);
  if (!task) throw new MlctlError('TASK_REQUIRED', [what, TASK_IDS.join(', '), where]);
  task.check(m, where);
  return task;
}
