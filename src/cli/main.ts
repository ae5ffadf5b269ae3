// mlctl's entry point: builds the commander program from the declarative command table, loads and runs the chosen
// command, prints its result (text, or one JSON document with --json) and maps every failure — usage errors
// included — to a registry code and its documented exit code. Imports nothing heavy: runners load on demand.
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { createRequire } from 'node:module';
import { EXIT, MlctlError, type ErrorCode } from '../errors.js';
import { createLogger, type Logger } from '../util/log.js';
import '../engines/index.js'; // the built-in engine kinds (light: each loads its runtime only when opened)
import { COMMANDS } from './commands/index.js';
import { exitCodesHelp } from './help.js';
import { COMMON_OPTIONS } from './options.js';
import type { AnyCommand, CommandResult, OptionSpec, RunContext } from './spec.js';

const require = createRequire(import.meta.url);
export const VERSION: string = (require('../../package.json') as { version: string }).version;

const HELP_HINT = '(run with --help for usage)';

/** The long flag of an option spec: "-d, --data <dir>" → "--data". */
export function longFlag(spec: OptionSpec): string {
  return spec.flags.split(/[ ,]+/).find((f) => f.startsWith('--'))!;
}

function parseValue(spec: OptionSpec, raw: string): unknown {
  const name = longFlag(spec);
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
  const opt = new Option(spec.flags, spec.required ? `${spec.description} (required)` : spec.description);
  if (spec.choices) opt.choices([...spec.choices]);
  else if (spec.type && spec.type !== 'boolean' && spec.type !== 'string') opt.argParser((raw: string) => parseValue(spec, raw));
  if (spec.env) opt.env(spec.env);
  if (spec.default !== undefined) opt.default(Array.isArray(spec.default) ? [...spec.default] : spec.default);
  return opt;
}

export interface ParsedCLI {
  command: string[];
  spec: AnyCommand;
  args: Array<string | string[] | undefined>;
  opts: Record<string, unknown>;
}

/** What the table promises beyond commander: booleans are false when absent, required options are present. */
function finishOpts(options: readonly OptionSpec[], raw: Record<string, unknown>): Record<string, unknown> {
  const opts = { ...raw };
  for (const o of options) {
    const key = new Option(o.flags).attributeName();
    if (o.type === 'boolean' && opts[key] === undefined) opts[key] = false;
    if (o.required && opts[key] === undefined) {
      throw new MlctlError('OPTION_REQUIRED', [`${longFlag(o)} is required: ${o.description}`]);
    }
  }
  return opts;
}

function addCommand(parent: Command, spec: AnyCommand, onParsed: (p: ParsedCLI) => void, pathSoFar: string[]): void {
  const cmd = parent.command(spec.name).description(spec.description ?? spec.summary).summary(spec.summary);
  for (const a of spec.aliases ?? []) cmd.alias(a);
  const fullPath = [...pathSoFar, spec.name];
  const examples = `\nExamples:\n${spec.examples.map((e: string) => `  $ ${e}`).join('\n')}`;
  if (spec.subcommands?.length) {
    for (const sub of spec.subcommands) addCommand(cmd, sub, onParsed, fullPath);
    cmd.addHelpText('after', examples);
    return;
  }
  const options: readonly OptionSpec[] = [...spec.options, ...COMMON_OPTIONS];
  for (const a of spec.args ?? []) cmd.argument(a);
  for (const o of options) cmd.addOption(toOption(o));
  cmd.addHelpText('after', `${examples}\n${exitCodesHelp()}`);
  cmd.action((...params: unknown[]) => {
    const command = params[params.length - 1] as Command;
    const args = params.slice(0, (spec.args ?? []).length) as ParsedCLI['args'];
    onParsed({ command: fullPath, spec, args, opts: finishOpts(options, command.opts()) });
  });
}

export function buildProgram(onParsed: (p: ParsedCLI) => void, commands: readonly AnyCommand[] = COMMANDS): Command {
  const program = new Command('mlctl')
    .description('Image classifiers from a folder of labelled images to a production inference endpoint.')
    .version(VERSION, '-V, --version')
    .configureOutput({ writeOut: (s) => process.stdout.write(s), writeErr: (s) => process.stderr.write(s) });
  program.addHelpText(
    'after',
    `
Quick start:
  $ mlctl datasets synth --out artifacts/sample-data
  $ mlctl train --data artifacts/sample-data --name sample --weights none --image-size 64
  $ mlctl evaluate sample --data artifacts/sample-data
  $ mlctl serve sample --port 5000
${exitCodesHelp()}`,
  );
  for (const spec of commands) addCommand(program, spec, onParsed, []);
  // Every (sub)command throws instead of exiting, so usage errors anywhere map to a registry code and exit 2.
  const applyOverride = (c: Command) => {
    c.exitOverride();
    c.showHelpAfterError(HELP_HINT);
    c.commands.forEach(applyOverride);
  };
  applyOverride(program);
  return program;
}

const COMMANDER_CODES: Record<string, ErrorCode> = {
  'commander.unknownCommand': 'UNKNOWN_COMMAND',
  'commander.unknownOption': 'UNKNOWN_OPTION',
  'commander.invalidArgument': 'OPTION_INVALID',
  'commander.optionMissingArgument': 'OPTION_INVALID',
  'commander.missingArgument': 'ARGUMENT_MISSING',
  'commander.missingMandatoryOptionValue': 'OPTION_REQUIRED',
};

/** A commander usage error as a registry error (its text without commander's "error: " prefix). */
function usageFromCommander(err: CommanderError): MlctlError {
  const message = err.code === 'commander.help' ? 'no command given: pick one of the commands listed above' : err.message.replace(/^error: /, '');
  return new MlctlError(COMMANDER_CODES[err.code] ?? 'USAGE', [message], { cause: err });
}

/** True for commander's control-flow "errors": help or version was shown on request. */
function isHelpOrVersion(err: unknown): err is CommanderError {
  return err instanceof CommanderError && (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || (err.code === 'commander.help' && err.exitCode === 0));
}

/**
 * Parse argv (node-style: [node, script, ...]) without running anything. Usage errors throw an MlctlError with
 * a usage code (exit 2); help or version shown on request throws commander's CommanderError (exit 0).
 */
export function parseCLI(argv: string[], commands: readonly AnyCommand[] = COMMANDS, { silent = true } = {}): ParsedCLI | undefined {
  let parsed: ParsedCLI | undefined;
  const program = buildProgram((p) => (parsed = p), commands);
  if (silent) {
    const quiet = (c: Command) => {
      c.configureOutput({ writeOut: () => {}, writeErr: () => {} });
      c.commands.forEach(quiet);
    };
    quiet(program);
  }
  try {
    program.parse(argv);
  } catch (err) {
    if (err instanceof CommanderError && !isHelpOrVersion(err)) throw usageFromCommander(err);
    throw err;
  }
  return parsed;
}

/** The command path named by argv, as far as it matches the table (for the JSON document of a usage error). */
function commandPathOf(argv: string[], commands: readonly AnyCommand[]): string {
  const words: string[] = [];
  let level: readonly AnyCommand[] | undefined = commands;
  for (const token of argv.slice(2)) {
    if (token === '--' || token.startsWith('-') || !level) break;
    const hit: AnyCommand | undefined = level.find((c) => c.name === token || c.aliases?.includes(token));
    words.push(token);
    if (!hit) break;
    level = hit.subcommands;
  }
  return words.join(' ');
}

/** --json anywhere before a "--" terminator: usage errors must honour it although parsing failed. */
function wantsJson(argv: string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).includes('--json');
}

function levelOf(opts: Record<string, unknown>): 'debug' | 'info' | 'warn' {
  return opts.verbose ? 'debug' : opts.quiet ? 'warn' : 'info';
}

/** One document, indented — or on one line for a streaming command (watch), whose stdout is read line by line. */
function writeJson(doc: Record<string, unknown>, oneLine = false): void {
  process.stdout.write(JSON.stringify(doc, null, oneLine ? undefined : 2) + '\n');
}

/** Whether the command named by `path` streams JSON lines (CommandSpec.stream). */
function streams(path: string, commands: readonly AnyCommand[]): boolean {
  let level: readonly AnyCommand[] | undefined = commands;
  let hit: AnyCommand | undefined;
  for (const word of path.split(' ')) {
    hit = level?.find((c) => c.name === word || c.aliases?.includes(word));
    level = hit?.subcommands;
  }
  return Boolean(hit?.stream);
}

function failureDocument(command: string, err: MlctlError | { code: string; exitCode: number; message: string }): Record<string, unknown> {
  return { ok: false, command, exitCode: err.exitCode, error: { code: err.code, message: err.message } };
}

export function printResult(res: CommandResult, parsed: ParsedCLI, json: boolean): number {
  const exitCode = res.exitCode ?? res.error?.exitCode ?? EXIT.OK;
  if (json) {
    const command = parsed.command.join(' ');
    writeJson(
      {
        ok: exitCode === EXIT.OK,
        command,
        exitCode,
        ...(res.result ?? {}),
        ...(res.error ? { error: { code: res.error.code, message: res.error.message } } : {}),
      },
      parsed.spec.stream,
    );
  } else if (res.text) {
    process.stdout.write(res.text.endsWith('\n') ? res.text : res.text + '\n');
  }
  return exitCode;
}

let pipeGuarded = false;

/**
 * A reader that went away (`mlctl evaluate --help | head`, `mlctl predict … | head -3`): stop at once and quietly, as a
 * Unix tool killed by SIGPIPE does, instead of dying on an unhandled EPIPE with a stack trace. Installed once.
 */
export function exitQuietlyOnClosedPipe(exit: (code: number) => never = process.exit): void {
  if (pipeGuarded) return;
  pipeGuarded = true;
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') exit(0);
      throw err;
    });
  }
}

/** Run mlctl with node-style argv. Returns the process exit code (calls process.exit only when its output pipe closes). */
export async function main(argv: string[], commands: readonly AnyCommand[] = COMMANDS): Promise<number> {
  exitQuietlyOnClosedPipe();
  let parsed: ParsedCLI | undefined;
  try {
    parsed = parseCLI(argv, commands, { silent: false });
  } catch (err) {
    if (isHelpOrVersion(err)) return EXIT.OK;
    if (!(err instanceof MlctlError)) throw err;
    // commander printed its own message and hint; the table's own checks (required options) print theirs here.
    if (!(err.cause instanceof CommanderError)) process.stderr.write(`error: ${err.message}\n${HELP_HINT}\n`);
    const path = commandPathOf(argv, commands);
    if (wantsJson(argv)) writeJson(failureDocument(path, err), streams(path, commands));
    return err.exitCode;
  }
  if (!parsed) {
    // A program without a runnable command (no sub-command given): show help; a usage error.
    buildProgram(() => {}, commands).outputHelp({ error: true });
    return EXIT.USAGE;
  }
  const json = Boolean(parsed.opts.json);
  // A command with --log-format (serve) writes every stderr line in that format, mlctl's own included.
  const logger: Logger = createLogger({ level: levelOf(parsed.opts), format: parsed.opts.logFormat === 'json' ? 'json' : 'text' });
  try {
    const spec = parsed.spec;
    // The parser filled opts from this command's own table, so they have the shape its runner declares.
    const run = (spec.run ?? (await spec.load!())) as (ctx: RunContext) => Promise<CommandResult>;
    const res = await run({ args: parsed.args, opts: parsed.opts, logger, json });
    return printResult(res, parsed, json);
  } catch (err) {
    const known = err instanceof MlctlError;
    const failure = known ? err : { code: 'INTERNAL', exitCode: EXIT.FAILURE, message: err instanceof Error ? err.message : String(err) };
    logger.error(failure.message);
    if (!known && err instanceof Error && err.stack) logger.debug(err.stack);
    if (!known) logger.info('(unexpected error: run with --verbose for the stack trace)');
    if (json) writeJson(failureDocument(parsed.command.join(' '), failure), parsed.spec.stream);
    return failure.exitCode;
  }
}
