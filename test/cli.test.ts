// CLI wiring: the declarative option table drives parsing, validation and typing; exit codes and --json (one
// document on success and on every failure, usage errors and gates included) are as documented.
import { afterEach, describe, expect, expectTypeOf, it } from 'vitest';
import { parseCLI } from '../src/cli/main.js';
import { COMMANDS } from '../src/cli/commands/index.js';
import { defineCommand, lazy, type ContextOf } from '../src/cli/spec.js';
import { MlctlError } from '../src/errors.js';
import { spawn } from 'node:child_process';
import { cliArgv, runCli } from './helpers/cli.js';
import { tempDir } from './helpers/fixtures.js';

const calls: Array<Record<string, unknown>> = [];
const demoTable = defineCommand({
  name: 'demo',
  summary: 'demo command',
  args: ['<model>', '[more...]'],
  options: [
    { flags: '--epochs <n>', description: 'epochs', type: 'int', default: 10, min: 1 },
    { flags: '--lr <x>', description: 'learning rate', type: 'float', default: 0.001 },
    { flags: '--head <kind>', description: 'head', choices: ['flatten', 'gap'], default: 'flatten' },
    { flags: '--augment <list>', description: 'augmentations', type: 'list' },
    { flags: '--patience <n>', description: 'patience', type: 'int' },
    { flags: '--resume', description: 'resume', type: 'boolean' },
    { flags: '--no-cache', description: 'skip the cache' },
    { flags: '--fail <how>', description: 'make the command fail', choices: ['gate', 'error', 'crash'] },
  ],
  examples: ['mlctl demo m'],
});
const demo = defineCommand({
  ...demoTable,
  async run({ args, opts }) {
    calls.push({ args, opts });
    if (opts.fail === 'gate') return { error: new MlctlError('GATE_FAILED', ['accuracy 0.5 is below --min-accuracy 0.9']), result: { gates: ['accuracy 0.5 < 0.9'] }, text: 'gate failed' };
    if (opts.fail === 'error') throw new MlctlError('DATA_DIR_MISSING', ['/nope']);
    if (opts.fail === 'crash') throw new TypeError('boom');
    return { result: { model: args[0], epochs: opts.epochs }, text: `trained ${args[0]}` };
  },
});
const needsData = defineCommand({
  name: 'needs',
  summary: 'a command with a required option',
  options: [{ flags: '-d, --data <dir>', description: 'image folder', required: true }],
  examples: [],
  async run({ opts }) {
    return { result: { data: opts.data } };
  },
});

const DEMO = { commands: [demo] };

afterEach(() => {
  calls.length = 0;
});

const argv = (...a: string[]) => ['node', 'mlctl', ...a];

describe('the option table types each command', () => {
  it('gives runners typed opts and args', () => {
    type Ctx = ContextOf<typeof demoTable>;
    expectTypeOf<Ctx['opts']['epochs']>().toEqualTypeOf<number>();
    expectTypeOf<Ctx['opts']['patience']>().toEqualTypeOf<number | undefined>();
    expectTypeOf<Ctx['opts']['head']>().toEqualTypeOf<'flatten' | 'gap'>();
    expectTypeOf<Ctx['opts']['augment']>().toEqualTypeOf<string[] | undefined>();
    expectTypeOf<Ctx['opts']['resume']>().toEqualTypeOf<boolean>();
    expectTypeOf<Ctx['opts']['cache']>().toEqualTypeOf<boolean>();
    expectTypeOf<Ctx['opts']['backend']>().toEqualTypeOf<'auto' | 'tensorflow' | 'wasm' | 'cpu'>();
    expectTypeOf<Ctx['args']>().toEqualTypeOf<readonly [string, string[]]>();
    expectTypeOf<ContextOf<typeof needsData>['opts']['data']>().toEqualTypeOf<string>();
  });

  it('every real command declares each flag once and names it as commander does', () => {
    const leaves = COMMANDS.flatMap((c) => (c.subcommands?.length ? [...c.subcommands] : [c]));
    expect(leaves.map((c) => c.name)).toEqual(expect.arrayContaining(['train', 'optimize', 'prune', 'quantize', 'tune', 'evaluate', 'export', 'serve', 'synth', 'inspect']));
    for (const c of leaves) {
      const longs = c.options.map((o: { flags: string }) => o.flags.split(/[ ,]+/).find((f) => f.startsWith('--')));
      expect(new Set(longs).size, `${c.name} repeats a flag`).toBe(longs.length);
      expect(c.load, `${c.name} has a lazy runner`).toBeTypeOf('function');
    }
  });
});

describe('parseCLI', () => {
  it('parses typed options with defaults from the table', () => {
    const p = parseCLI(argv('demo', 'm1', 'x', 'y', '--epochs', '3', '--lr', '1e-4', '--augment', 'flip, rotate'), [demo])!;
    expect(p.command).toEqual(['demo']);
    expect(p.args).toEqual(['m1', ['x', 'y']]);
    expect(p.opts).toMatchObject({ epochs: 3, lr: 0.0001, head: 'flatten', augment: ['flip', 'rotate'], backend: 'auto', resume: false, cache: true, json: false });
    expect(p.opts.patience).toBeUndefined();
    expect(parseCLI(argv('demo', 'm1', '--no-cache', '--resume'), [demo])!.opts).toMatchObject({ cache: false, resume: true });
  });

  it('rejects bad values, unknown options, choices and missing arguments with usage codes', () => {
    const codeOf = (...a: string[]) => {
      try {
        parseCLI(argv(...a), [demo, needsData]);
      } catch (err) {
        return { code: (err as MlctlError).code, exit: (err as MlctlError).exitCode, message: (err as Error).message };
      }
      throw new Error('parsed');
    };
    expect(codeOf('demo', 'm', '--epochs', '2.5')).toMatchObject({ code: 'OPTION_INVALID', exit: 2, message: expect.stringMatching(/whole number/) });
    expect(codeOf('demo', 'm', '--epochs', '0')).toMatchObject({ code: 'OPTION_INVALID', message: expect.stringMatching(/≥ 1/) });
    expect(codeOf('demo', 'm', '--lr', 'fast')).toMatchObject({ code: 'OPTION_INVALID', message: expect.stringMatching(/expects a number/) });
    expect(codeOf('demo', 'm', '--head', 'mlp')).toMatchObject({ code: 'OPTION_INVALID', message: expect.stringMatching(/Allowed choices/) });
    expect(codeOf('demo', 'm', '--epochs')).toMatchObject({ code: 'OPTION_INVALID', message: expect.stringMatching(/argument missing/) });
    expect(codeOf('demo', 'm', '--nope')).toMatchObject({ code: 'UNKNOWN_OPTION', exit: 2, message: expect.stringMatching(/unknown option '--nope'/) });
    expect(codeOf('demo')).toMatchObject({ code: 'ARGUMENT_MISSING', exit: 2, message: expect.stringMatching(/missing required argument 'model'/) });
    expect(codeOf('nonsense')).toMatchObject({ code: 'UNKNOWN_COMMAND', exit: 2 });
    expect(codeOf('needs')).toMatchObject({ code: 'OPTION_REQUIRED', exit: 2, message: '--data is required: image folder' });
    expect(codeOf()).toMatchObject({ code: 'USAGE', exit: 2 });
  });

  it('reads defaults from the environment (MLCTL_BACKEND)', () => {
    process.env.MLCTL_BACKEND = 'cpu';
    try {
      expect(parseCLI(argv('demo', 'm'), [demo])!.opts.backend).toBe('cpu');
    } finally {
      delete process.env.MLCTL_BACKEND;
    }
  });

  it('loads a runner only when its command runs', async () => {
    let loads = 0;
    const lazyDemo = lazy(demoTable, async () => {
      loads++;
      return demo.run!;
    });
    expect(parseCLI(argv('demo', 'm'), [lazyDemo])).toBeDefined();
    expect((await runCli(['demo', '--help'], { commands: [lazyDemo] })).code).toBe(0);
    expect(loads).toBe(0);
    expect((await runCli(['demo', 'm', '--epochs', '2'], { commands: [lazyDemo] })).code).toBe(0);
    expect(loads).toBe(1);
    expect(calls[0]!.opts).toMatchObject({ epochs: 2 });
  });
});

describe('main', () => {
  it('prints text on success and exits 0', async () => {
    const r = await runCli(['demo', 'm1'], DEMO);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('trained m1\n');
  });

  it('--json prints exactly one JSON document on stdout', async () => {
    const r = await runCli(['demo', 'm1', '--json', '--epochs', '4'], DEMO);
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ ok: true, command: 'demo', exitCode: 0, model: 'm1', epochs: 4 });
  });

  it('maps usage errors to 2, MlctlErrors to their code, gates to 3 and crashes to 1', async () => {
    expect((await runCli(['demo', 'm', '--epochs', 'x'], DEMO)).code).toBe(2);
    expect((await runCli(['nonsense'], DEMO)).code).toBe(2);
    expect((await runCli([], DEMO)).code).toBe(2);
    const gate = await runCli(['demo', 'm', '--fail', 'gate'], DEMO);
    expect(gate.code).toBe(3);
    expect(gate.stdout).toContain('gate failed');
    const error = await runCli(['demo', 'm', '--fail', 'error'], DEMO);
    expect(error.code).toBe(1);
    expect(error.stderr).toMatch(/dataset folder \/nope does not exist/);
    const crash = await runCli(['demo', 'm', '--fail', 'crash'], DEMO);
    expect(crash.code).toBe(1);
    expect(crash.stderr).toMatch(/boom/);
    const needs = await runCli(['needs'], { commands: [needsData] });
    expect(needs.code).toBe(2);
    expect(needs.stderr).toMatch(/error: --data is required: image folder\n\(run with --help for usage\)/);
    const errorJson = await runCli(['demo', 'm', '--fail', 'error', '--json'], DEMO);
    expect(errorJson.code).toBe(1);
    expect(errorJson.json).toMatchObject({ ok: false, exitCode: 1, error: { code: 'DATA_DIR_MISSING' } });
    const crashJson = await runCli(['demo', 'm', '--fail', 'crash', '--json'], DEMO);
    expect(crashJson.code).toBe(1);
    expect(crashJson.json).toEqual({ ok: false, command: 'demo', exitCode: 1, error: { code: 'INTERNAL', message: 'boom' } });
  });

  it('--json: every usage error is one {ok:false, command, exitCode:2, error:{code, message}} document on stdout', async () => {
    const cases: Array<[string[], string, string, RegExp]> = [
      [['nonsense'], 'nonsense', 'UNKNOWN_COMMAND', /unknown command 'nonsense'/],
      [['demo', 'm', '--nope'], 'demo', 'UNKNOWN_OPTION', /unknown option '--nope'/],
      [['demo', 'm', '--head', 'mlp'], 'demo', 'OPTION_INVALID', /Allowed choices are flatten, gap/],
      [['demo', 'm', '--lr', 'fast'], 'demo', 'OPTION_INVALID', /--lr expects a number/],
      [['demo'], 'demo', 'ARGUMENT_MISSING', /missing required argument 'model'/],
      [['needs'], 'needs', 'OPTION_REQUIRED', /^--data is required/],
    ];
    for (const [args, command, code, message] of cases) {
      const r = await runCli([...args, '--json'], { commands: [demo, needsData] });
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdoutWrites, `one write for ${args.join(' ')}`).toBe(1);
      const doc = r.json;
      expect(Object.keys(doc).sort()).toEqual(['command', 'error', 'exitCode', 'ok']);
      expect(doc).toMatchObject({ ok: false, command, exitCode: 2, error: { code } });
      expect(doc.error.message).toMatch(message);
      expect(r.stderr).toMatch(/error: /);
    }
  });

  it('--json after "--" is an argument, not the flag', async () => {
    const r = await runCli(['demo', '--nope', '--', '--json'], DEMO);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
  });

  it('a failed gate is ok:false with error GATE_FAILED beside its result fields (exit 3)', async () => {
    const r = await runCli(['demo', 'm', '--fail', 'gate', '--json'], DEMO);
    expect(r.code).toBe(3);
    expect(r.json).toEqual({
      ok: false,
      command: 'demo',
      exitCode: 3,
      gates: ['accuracy 0.5 < 0.9'],
      error: { code: 'GATE_FAILED', message: 'accuracy 0.5 is below --min-accuracy 0.9' },
    });
  });

  it('--help and --version exit 0; help lists examples, required options, exit codes and env vars', async () => {
    const version = await runCli(['--version'], DEMO);
    expect(version.code).toBe(0);
    expect(version.stdout).toMatch(/^\d+\.\d+\.\d+/);
    const demoHelp = await runCli(['demo', '--help'], DEMO);
    expect(demoHelp.code).toBe(0);
    const help = demoHelp.stdout;
    expect(help).toContain('$ mlctl demo m');
    expect(help).toContain('Exit codes:');
    expect(help).toMatch(/3 {4}a quality gate failed/);
    expect(help).toContain('--epochs <n>');
    expect(help).toContain('MLCTL_BACKEND');
    const trainHelp = await runCli(['train', '--help']);
    expect(trainHelp.code).toBe(0);
    const train = trainHelp.stdout.replace(/\s+/g, ' '); // help wraps at the terminal width
    expect(train).toMatch(/-d, --data <dir> image folder.*?\(required\) --task <task> .*?-n, --name/);
    expect(train).toMatch(/--engine <name> feature extraction engine[^()]*\(choices: "auto", "onnx", "tfjs", default: "auto"\)/);
    expect(train).toMatch(/--seed <n> seed for the split.*?default 42\) --resume/);
    // The environment block keeps its columns apart, however long a variable's name.
    expect(trainHelp.stdout).toMatch(/ {2}MLCTL_CACHE_MAX_SIZE {2,}size cap of the cache/);
    for (const line of trainHelp.stdout.split('\n').filter((l) => /^ {2}(MLCTL_|NO_COLOR)/.test(l))) expect(line).toMatch(/^ {2}[A-Z_]+ {2,}\S/);
    expect(train).toContain('$ mlctl train --data ./flowers --name flowers --resume');
    expect(train).toContain('130 interrupted');
  });

  it('runs the real datasets command end to end', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const synth = await runCli(['datasets', 'synth', '--out', dir, '--classes', '2', '--per-class', '3', '--size', '16', '--json']);
      expect(synth.code).toBe(0);
      expect(synth.json).toMatchObject({ ok: true, files: 6, classes: ['circle', 'square'] });
      const inspect = await runCli(['datasets', 'inspect', dir, '--json', '--validation-split', '0.34']);
      expect(inspect.code).toBe(0);
      expect(inspect.json.perClass).toEqual([
        { class: 'circle', train: 2, val: 1, test: 0 },
        { class: 'square', train: 2, val: 1, test: 0 },
      ]);
      const nope = await runCli(['datasets', 'nope', '--json']);
      expect(nope.code).toBe(2);
      expect(nope.json).toMatchObject({ ok: false, command: 'datasets nope', exitCode: 2, error: { code: 'UNKNOWN_COMMAND' } });
    } finally {
      await cleanup();
    }
  });
});

describe('a closed output pipe', () => {
  const quote = (a: string) => `'${a.replace(/'/g, "'\\''")}'`;
  /** `mlctl ARGS | READER` in bash with pipefail (mlctl's own exit status counts); mlctl's stderr is bash's. */
  const pipeline = (args: string[], reader: string) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn('bash', ['-c', `set -o pipefail; ${cliArgv(args).map(quote).join(' ')} | ${reader}`], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', (status) => resolve({ status, stdout, stderr }));
    });

  it('`mlctl evaluate --help | head` and `models ls --help | head -2` end quietly, exit 0, no EPIPE stack trace', async () => {
    const runs = [
      [['evaluate', '--help'], 'head -1'],
      [['models', 'ls', '--help'], 'head -2'],
      // A reader gone before the first byte: every write meets EPIPE.
      [['train', '--help'], 'true'],
    ] as const;
    const results = await Promise.all(runs.map(([args, reader]) => pipeline([...args], reader)));
    for (const [i, [args, reader]] of runs.entries()) {
      const r = results[i]!;
      expect(r.stderr, `${args.join(' ')} | ${reader}`).not.toMatch(/EPIPE|Error|\n\s+at /);
      expect(r.status, `${args.join(' ')} | ${reader}: ${r.stderr}`).toBe(0);
      if (reader !== 'true') expect(r.stdout).toMatch(/^Usage: mlctl /);
    }
  }, 180_000);
});
