// Declarative command and option tables (the vitest cli-config pattern, typed the other way round): one description
// of every flag feeds --help, parsing, validation and docs/cli.md, and its literal types give each command a typed
// `opts`. Command tables live in light modules; a command's `run` is loaded with a dynamic import only when it runs.
import type { MlctlError } from '../errors.js';
import type { Logger } from '../util/log.js';

export type OptionType = 'string' | 'int' | 'float' | 'boolean' | 'list';

export interface OptionSpec {
  /** Commander flag syntax, e.g. "--batch-size <n>", "-o, --out <dir>", "--no-cache". */
  flags: string;
  description: string;
  type?: OptionType;
  default?: string | number | boolean | readonly string[];
  choices?: readonly string[];
  /** Environment variable that provides the default. */
  env?: string;
  /** Inclusive numeric bounds for int/float options. */
  min?: number;
  max?: number;
  /** The command cannot run without it: parsing fails with OPTION_REQUIRED (exit 2) naming the flag. */
  required?: boolean;
}

/** Commander's attribute name for a flag: "-d, --data <dir>" → data, "--fine-tune-lr <r>" → fineTuneLr, "--no-x" → x. */
type LongName<F extends string> = F extends `${string}--${infer Rest}` ? (Rest extends `${infer N} ${string}` ? N : Rest) : never;
type Camel<S extends string> = S extends `${infer H}-${infer T}` ? `${H}${Capitalize<Camel<T>>}` : S;
export type OptionKey<F extends string> = LongName<F> extends `no-${infer R}` ? Camel<R> : Camel<LongName<F>>;

type BaseValue<S extends OptionSpec> = S extends { type: 'boolean' }
  ? boolean
  : LongName<S['flags']> extends `no-${string}`
    ? boolean
    : S extends { choices: readonly (infer C)[] }
      ? C
      : S extends { type: 'int' | 'float' }
        ? number
        : S extends { type: 'list' }
          ? string[]
          : string;

/** Booleans are always set (false when absent), as are options with a default or `required: true`. */
type AlwaysSet<S extends OptionSpec> = S extends { type: 'boolean' } | { required: true } | { default: string | number | boolean | readonly string[] }
  ? true
  : LongName<S['flags']> extends `no-${string}`
    ? true
    : false;

export type OptionValue<S extends OptionSpec> = AlwaysSet<S> extends true ? BaseValue<S> : BaseValue<S> | undefined;

/** The parsed options of a table: one camelCase key per option, typed by the option's kind, choices and default. */
export type OptsOf<O extends readonly OptionSpec[]> = { [S in O[number] as OptionKey<S['flags']>]: OptionValue<S> };

/** Positional arguments by commander syntax: "<x>" → string, "[x]" → string | undefined, "<x...>" / "[x...]" → string[]. */
export type ArgsOf<A extends readonly string[]> = {
  [I in keyof A]: A[I] extends `${string}...${string}` ? string[] : A[I] extends `[${string}` ? string | undefined : string;
};

/** Options every leaf command accepts (declared in options.ts; repeated here as a type so spec.ts stays import-free). */
export type CommonOpts = {
  backend: 'auto' | 'tensorflow' | 'wasm' | 'cpu';
  json: boolean;
  quiet: boolean;
  verbose: boolean;
};

export interface RunContext<Opts = Record<string, unknown>, Args extends readonly unknown[] = Array<string | string[] | undefined>> {
  /** Positional arguments in declaration order (variadic last argument as string[]). */
  args: Args;
  opts: Opts;
  logger: Logger;
  json: boolean;
}

export interface CommandResult {
  /** Exit code (default 0, or the error's exit code when `error` is set). */
  exitCode?: number;
  /** Machine-readable result: printed as JSON on stdout with --json. */
  result?: object;
  /** Human-readable result: printed on stdout without --json. */
  text?: string;
  /**
   * The run finished with results but did not succeed (a failed quality gate): with --json the document carries
   * ok:false and error {code, message} beside the result fields, and the exit code is the error's.
   */
  error?: MlctlError;
}

export type RunFn<Opts, Args extends readonly unknown[]> = (ctx: RunContext<Opts, Args>) => Promise<CommandResult>;

export interface CommandSpec<O extends readonly OptionSpec[] = readonly OptionSpec[], A extends readonly string[] = readonly string[]> {
  name: string;
  aliases?: readonly string[];
  summary: string;
  description?: string;
  /** Commander argument syntax, e.g. ["<model>"], ["<models...>"], ["[dir]"]. */
  args?: A;
  options: O;
  examples: readonly string[];
  /**
   * A long-running command whose --json output is a stream of one-line JSON documents (watch's events): its final
   * result or error is printed on one line too, so line-by-line readers never meet a multi-line document.
   */
  stream?: boolean;
  /** Sub-commands (e.g. `datasets synth`); a command has either a runner or subcommands. */
  subcommands?: readonly AnyCommand[];
  /** Runs the command (tests and tiny commands). Bivariant (method syntax) so typed commands fit in one table. */
  run?(ctx: RunContext<OptsOf<O> & CommonOpts, ArgsOf<A>>): Promise<CommandResult>;
  /** Loads the runner on demand, so --help and --version never import what a command needs to run. */
  load?(): Promise<RunFn<OptsOf<O> & CommonOpts, ArgsOf<A>>>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- heterogeneous table of typed commands
export type AnyCommand = CommandSpec<any, any>;

/** The context a command's runner receives: `(ctx: ContextOf<typeof trainCommand>) => …`. */
export type ContextOf<C> = C extends CommandSpec<infer O, infer A> ? RunContext<OptsOf<O> & CommonOpts, ArgsOf<A>> : never;

/** Declare a command: keeps the literal types of its options and arguments, so its runner gets typed `opts`. */
export function defineCommand<const O extends readonly OptionSpec[], const A extends readonly string[] = readonly []>(spec: CommandSpec<O, A>): CommandSpec<O, A> {
  return spec;
}

/** Attach a lazily imported runner to a command table: `lazy(trainCommand, () => import('./run/train.js').then((m) => m.run))`. */
export function lazy<O extends readonly OptionSpec[], A extends readonly string[]>(
  spec: CommandSpec<O, A>,
  load: () => Promise<RunFn<OptsOf<O> & CommonOpts, ArgsOf<A>>>,
): CommandSpec<O, A> {
  return { ...spec, load };
}

/**
 * A choice list for a value type defined in a heavy module (e.g. the runtime's EngineChoice), checked at compile
 * time to name every value, so the light option table needs only a type import: choicesOf<EngineChoice>()([...]).
 */
export function choicesOf<T extends string>() {
  return <const C extends readonly T[]>(values: C & ([Exclude<T, C[number]>] extends [never] ? unknown : { missing: Exclude<T, C[number]> })): C => values;
}
