// mlctl's entry point: builds the commander program from the declarative command table, runs the chosen
// command, prints its result (text, or one JSON document with --json) and maps errors to documented exit codes.
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { createRequire } from 'node:module';
import { EXIT, MlctlError, exitCodeOf } from '../errors.js';
import { createLogger, type Logger } from '../util/log.js';
import '../engines/index.js'; // the built-in engine kinds (light: each loads its runtime only when opened)
import { COMMANDS } from './commands/index.js';
import { COMMON_OPTIONS, type CommandResult, type CommandSpec, type OptionSpec, type RunContext } from './spec.js';

const require = createRequire(import.meta.url);
export const VERSION: string = (require('../../package.json') as { version: string }).version;

const EXIT_CODES_HELP = `
Exit codes:
  0    success
  1    failure (bad input, missing files, runtime error)
  2    usage error (unknown command or option, invalid option value)
  3    a quality gate failed (evaluate --min-*/--max-*, quantize --max-accuracy-drop)
  130  interrupted (Ctrl-C / SIGTERM; a checkpoint is kept where one applies)

Environment:
  MLCTL_BACKEND    default for --backend
  MLCTL_CACHE      download/feature cache directory (default: ~/.cache/mlctl)
  MLCTL_ARTIFACTS  where model packages live (default: ./artifacts)
  NO_COLOR         disable colour`;

function parseValue(spec: OptionSpec, raw: string): unknown {
  const name = spec.flags.split(/[ ,]+/).find((f) => f.startsWith('--'))!;
  const check = (n: number) => {
    if (!Number.isFinite(n)) throw new InvalidArgumentError(`${name} expects a number.`);
    if (spec.min !== undefined && n < spec.min) throw new InvalidArgumentError(`${name} must be ≥ ${spec.min}.`);
    if (spec.max !== undefined && n > spec.max) throw new InvalidArgumentError(`${name} must be ≤ ${spec.max}.`);
    return n;
  };
  switch (spec.type) {
    case 'int': {
      if (!/^-?\d+$/.test(raw.trim())) throw new InvalidArgumentError(`${name} expects a whole number.`);
      return check(Number(raw));
    }
    case 'float':
      if (raw.trim() === '') throw new InvalidArgumentError(`${name} expects a number.`);
      return check(Number(raw));
    case 'list':
      return raw.split(',').map((s) => s.trim()).filter(Boolean);
    default:
      return raw;
  }
}

function toOption(spec: OptionSpec): Option {
  const opt = new Option(spec.flags, spec.description);
  if (spec.choices) opt.choices(spec.choices as string[]);
  else if (spec.type && spec.type !== 'boolean' && spec.type !== 'string') opt.argParser((raw: string) => parseValue(spec, raw));
  if (spec.env) opt.env(spec.env);
  if (spec.default !== undefined) opt.default(spec.default);
  return opt;
}

export interface ParsedCLI {
  command: string[];
  spec: CommandSpec;
  args: RunContext['args'];
  opts: Record<string, unknown>;
}

function addCommand(parent: Command, spec: CommandSpec, onParsed: (p: ParsedCLI) => void, pathSoFar: string[]): void {
  const cmd = parent.command(spec.name).description(spec.description ?? spec.summary).summary(spec.summary);
  for (const a of spec.aliases ?? []) cmd.alias(a);
  const fullPath = [...pathSoFar, spec.name];
  if (spec.subcommands?.length) {
    for (const sub of spec.subcommands) addCommand(cmd, sub, onParsed, fullPath);
    cmd.addHelpText('after', `\nExamples:\n${spec.examples.map((e) => `  $ ${e}`).join('\n')}`);
    return;
  }
  for (const a of spec.args ?? []) cmd.argument(a);
  for (const o of [...spec.options, ...COMMON_OPTIONS]) cmd.addOption(toOption(o));
  cmd.addHelpText('after', `\nExamples:\n${spec.examples.map((e) => `  $ ${e}`).join('\n')}\n${EXIT_CODES_HELP}`);
  cmd.action((...params: unknown[]) => {
    const command = params[params.length - 1] as Command;
    const args = params.slice(0, (spec.args ?? []).length) as RunContext['args'];
    onParsed({ command: fullPath, spec, args, opts: command.opts() });
  });
}

export function buildProgram(onParsed: (p: ParsedCLI) => void, commands: CommandSpec[] = COMMANDS): Command {
  const program = new Command('mlctl')
    .description('Image classifiers from a folder of labelled images to a production inference endpoint.')
    .version(VERSION, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => process.stdout.write(s), writeErr: (s) => process.stderr.write(s) });
  program.addHelpText(
    'after',
    `
Quick start:
  $ mlctl datasets synth --out artifacts/sample-data
  $ mlctl train --data artifacts/sample-data --name sample --weights none --image-size 64
  $ mlctl evaluate sample --data artifacts/sample-data
  $ mlctl serve sample --port 5000
${EXIT_CODES_HELP}`,
  );
  for (const spec of commands) addCommand(program, spec, onParsed, []);
  // Sub-commands inherit the error handling so usage errors anywhere map to exit 2.
  const applyOverride = (c: Command) => {
    c.exitOverride();
    c.showHelpAfterError('(run with --help for usage)');
    c.commands.forEach(applyOverride);
  };
  program.commands.forEach(applyOverride);
  return program;
}

/** Parse argv (node-style: [node, script, ...]) without running anything. Throws CommanderError on usage errors. */
export function parseCLI(argv: string[], commands: CommandSpec[] = COMMANDS, { silent = true } = {}): ParsedCLI | undefined {
  let parsed: ParsedCLI | undefined;
  const program = buildProgram((p) => (parsed = p), commands);
  if (silent) {
    const quiet = (c: Command) => {
      c.configureOutput({ writeOut: () => {}, writeErr: () => {} });
      c.commands.forEach(quiet);
    };
    quiet(program);
  }
  program.parse(argv);
  return parsed;
}

function levelOf(opts: Record<string, unknown>): 'debug' | 'info' | 'warn' {
  return opts.verbose ? 'debug' : opts.quiet ? 'warn' : 'info';
}

export function printResult(res: CommandResult, parsed: ParsedCLI, json: boolean): void {
  const exitCode = res.exitCode ?? EXIT.OK;
  if (json) {
    process.stdout.write(JSON.stringify({ ok: exitCode === EXIT.OK, command: parsed.command.join(' '), exitCode, ...(res.result ?? {}) }, null, 2) + '\n');
  } else if (res.text) {
    process.stdout.write(res.text.endsWith('\n') ? res.text : res.text + '\n');
  }
}

/** Run mlctl with node-style argv. Returns the process exit code (never calls process.exit). */
export async function main(argv: string[], commands: CommandSpec[] = COMMANDS): Promise<number> {
  let parsed: ParsedCLI | undefined;
  try {
    parsed = parseCLI(argv, commands, { silent: false });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return EXIT.OK;
      // Help shown because no (sub)command was given is a usage error; asked-for help is not.
      if (err.code === 'commander.help') return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
      // commander already printed the message; add the help hint and the usage exit code.
      return EXIT.USAGE;
    }
    throw err;
  }
  if (!parsed) {
    // No sub-command: show help (a usage error, as for any unknown invocation).
    buildProgram(() => {}, commands).outputHelp({ error: true });
    return EXIT.USAGE;
  }
  const json = Boolean(parsed.opts.json);
  const logger: Logger = createLogger({ level: levelOf(parsed.opts) });
  try {
    const res = await parsed.spec.run!({ args: parsed.args, opts: parsed.opts, logger, json });
    printResult(res, parsed, json);
    return res.exitCode ?? EXIT.OK;
  } catch (err) {
    const code = exitCodeOf(err);
    const message = err instanceof Error ? err.message : String(err);
    logger.error(message);
    if (!(err instanceof MlctlError) && err instanceof Error && err.stack) logger.debug(err.stack);
    if (!(err instanceof MlctlError)) logger.info('(unexpected error: run with --verbose for the stack trace)');
    if (json) {
      const codeName = err instanceof MlctlError ? err.code : 'INTERNAL';
      process.stdout.write(JSON.stringify({ ok: false, command: parsed.command.join(' '), exitCode: code, error: { code: codeName, message } }, null, 2) + '\n');
    }
    return code;
  }
}
