// Vitest reporter that ends the run with one plain line, "tests: N passed, N failed, N skipped", which CI logs
// (and people skimming them) can read without knowing vitest's own output format.
import type { Reporter } from 'vitest/reporters';

type Task = { type: string; mode?: string; result?: { state?: string }; tasks?: Task[] };

function count(tasks: Task[], acc = { passed: 0, failed: 0, skipped: 0 }) {
  for (const t of tasks) {
    if (t.tasks) count(t.tasks, acc);
    if (t.type !== 'test') continue;
    const state = t.result?.state;
    if (state === 'pass') acc.passed++;
    else if (state === 'fail') acc.failed++;
    else acc.skipped++;
  }
  return acc;
}

export default class SummaryReporter implements Reporter {
  onFinished(files: Task[] = [], errors: unknown[] = []) {
    const c = count(files);
    const fileFailures = files.filter((f) => f.result?.state === 'fail' && !(f.tasks ?? []).length).length;
    process.stdout.write(`\ntests: ${c.passed} passed, ${c.failed + fileFailures + errors.length} failed, ${c.skipped} skipped\n`);
  }
}
