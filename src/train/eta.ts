// The ETA of a whole training run across its phases (head epochs, then fine-tune epochs): each phase declares its work
// in units (batches, images) and reports units done; its rate is measured once it runs, or estimated beforehand
// (the fine-tune phase times one calibration step before the head phase starts). Early stopping can only end sooner.
import { formatDuration } from '../util/progress.js';

export interface RunClock {
  /** Declare a phase's total units, with an estimate of seconds per unit until it is measured. */
  plan(phase: string, units: number, secondsPerUnit?: number): void;
  /** Units of `phase` done so far (cumulative); the first call starts the phase's clock. */
  progress(phase: string, done: number): void;
  /** A phase that ended (early stopping, interruption): nothing of it remains. */
  finish(phase: string): void;
  /** Seconds left over all planned phases, or undefined while a phase has neither a rate nor an estimate. */
  remaining(): number | undefined;
  /** "run ETA 12m30s", or "" when unknown. */
  text(): string;
}

interface Phase {
  units: number;
  done: number;
  estimate?: number;
  startedAt?: number;
  /** Units already done when the clock started (a resumed phase). */
  base: number;
  finished: boolean;
}

export function createRunClock(now: () => number = () => performance.now()): RunClock {
  const phases = new Map<string, Phase>();
  const clock: RunClock = {
    plan(name, units, secondsPerUnit) {
      const p = phases.get(name);
      if (p) {
        p.units = units;
        if (secondsPerUnit !== undefined) p.estimate = secondsPerUnit;
      } else phases.set(name, { units, done: 0, estimate: secondsPerUnit, base: 0, finished: false });
    },
    progress(name, done) {
      const p = phases.get(name);
      if (!p) return;
      if (p.startedAt === undefined) {
        p.startedAt = now();
        p.base = done;
      }
      p.done = done;
    },
    finish(name) {
      const p = phases.get(name);
      if (p) p.finished = true;
    },
    remaining() {
      let total = 0;
      for (const p of phases.values()) {
        if (p.finished) continue;
        const left = Math.max(0, p.units - p.done);
        if (left === 0) continue;
        const measured = p.startedAt !== undefined && p.done > p.base ? (now() - p.startedAt) / 1000 / (p.done - p.base) : undefined;
        const perUnit = measured ?? p.estimate;
        if (perUnit === undefined) return undefined;
        total += left * perUnit;
      }
      return total;
    },
    text() {
      const s = clock.remaining();
      return s === undefined ? '' : `run ETA ${formatDuration(s)}`;
    },
  };
  return clock;
}
