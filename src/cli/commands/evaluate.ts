// `mlctl evaluate` — placeholder until its issue lands: says so and exits 1.
import { notImplemented } from '../context.js';
import type { CommandSpec } from '../spec.js';

export const evaluateCommand: CommandSpec = {
  name: 'evaluate',
  summary: 'evaluate (not implemented yet)',
  args: ['[target...]'],
  options: [],
  examples: [],
  async run() {
    notImplemented('mlctl evaluate');
  },
};
