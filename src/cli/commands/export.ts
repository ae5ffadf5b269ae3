// `mlctl export` — placeholder until its issue lands: says so and exits 1.
import { notImplemented } from '../context.js';
import type { CommandSpec } from '../spec.js';

export const exportCommand: CommandSpec = {
  name: 'export',
  summary: 'export (not implemented yet)',
  args: ['[target...]'],
  options: [],
  examples: [],
  async run() {
    notImplemented('mlctl export');
  },
};
