// `mlctl train` — placeholder until its issue lands: says so and exits 1.
import { notImplemented } from '../context.js';
import type { CommandSpec } from '../spec.js';

export const trainCommand: CommandSpec = {
  name: 'train',
  summary: 'train (not implemented yet)',
  args: ['[target...]'],
  options: [],
  examples: [],
  async run() {
    notImplemented('mlctl train');
  },
};
