// The command table: every mlctl subcommand, in the order --help lists them. Each lives in its own file.
import type { CommandSpec } from '../spec.js';
import { datasetsCommand } from './datasets.js';
import { trainCommand } from './train.js';
import { evaluateCommand } from './evaluate.js';
import { optimizeCommands } from './optimize.js';
import { exportCommand } from './export.js';
import { serveCommand } from './serve.js';

export const COMMANDS: CommandSpec[] = [trainCommand, ...optimizeCommands, evaluateCommand, exportCommand, serveCommand, datasetsCommand];
