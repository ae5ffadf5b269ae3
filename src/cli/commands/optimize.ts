// `mlctl optimize|prune|quantize|tune` — placeholders until the optimize issue lands: they say so and exit 1.
import { notImplemented } from '../context.js';
import type { CommandSpec } from '../spec.js';

const stub = (name: string): CommandSpec => ({
  name,
  summary: `${name} (not implemented yet)`,
  args: ['[target...]'],
  options: [],
  examples: [],
  async run() {
    notImplemented(`mlctl ${name}`);
  },
});

export const optimizeCommands: CommandSpec[] = [stub('optimize'), stub('prune'), stub('quantize'), stub('tune')];
