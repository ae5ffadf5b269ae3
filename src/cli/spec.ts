// Declarative command and option tables: one description of every flag feeds --help, parsing and validation
// (the vitest CLI pattern). Command files in commands/ export CommandSpec values; main.ts turns them into commander.
import type { Logger } from '../util/log.js';

export type OptionType = 'string' | 'int' | 'float' | 'boolean' | 'list';

export interface OptionSpec {
  /** Commander flag syntax, e.g. "--batch-size <n>", "-o, --out <dir>", "--no-cache". */
  flags: string;
  description: string;
  type?: OptionType;
  default?: string | number | boolean | string[];
  choices?: readonly string[];
  /** Environment variable that provides the default. */
  env?: string;
  /** Inclusive numeric bounds for int/float options. */
  min?: number;
  max?: number;
}

export interface RunContext {
  /** Positional arguments in declaration order (variadic last argument as string[]). */
  args: Array<string | string[] | undefined>;
  opts: Record<string, unknown>;
  logger: Logger;
  json: boolean;
}

export interface CommandResult {
  /** Exit code (default 0). */
  exitCode?: number;
  /** Machine-readable result: printed as JSON on stdout with --json. */
  result?: Record<string, unknown>;
  /** Human-readable result: printed on stdout without --json. */
  text?: string;
}

export interface CommandSpec {
  name: string;
  aliases?: string[];
  summary: string;
  description?: string;
  /** Commander argument syntax, e.g. ["<model>"], ["<models...>"], ["[dir]"]. */
  args?: string[];
  options: OptionSpec[];
  examples: string[];
  /** Sub-commands (e.g. `datasets synth`); a command has either run or subcommands. */
  subcommands?: CommandSpec[];
  run?: (ctx: RunContext) => Promise<CommandResult>;
}

/** Options every command accepts. */
export const COMMON_OPTIONS: OptionSpec[] = [
  { flags: '--backend <name>', description: 'TF.js backend: auto picks tensorflow (tfjs-node), then wasm, then cpu', choices: ['auto', 'tensorflow', 'wasm', 'cpu'], default: 'auto', env: 'MLCTL_BACKEND' },
  { flags: '--json', description: 'print one machine-readable JSON result on stdout (logs stay on stderr)', type: 'boolean' },
  { flags: '-q, --quiet', description: 'only warnings and errors on stderr', type: 'boolean' },
  { flags: '-v, --verbose', description: 'debug output on stderr', type: 'boolean' },
];
