// CLI wiring: the declarative option table drives parsing and validation; exit codes and --json are as documented.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main, parseCLI } from '../src/cli/main.js';
import type { CommandSpec } from '../src/cli/spec.js';
import { MlctlError } from '../src/errors.js';
import { tempDir } from './helpers/fixtures.js';

const calls: Array<Record<string, unknown>> = [];
const demo: CommandSpec = {
  name: 'demo',
  summary: 'demo command',
  args: ['<model>', '[more...]'],
  options: [
    { flags: '--epochs <n>', description: 'epochs', type: 'int', default: 10, min: 1 },
    { flags: '--lr <x>', description: 'learning rate', type: 'float', default: 0.001 },
    { flags: '--head <kind>', description: 'head', choices: ['flatten', 'gap'], default: 'flatten' },
    { flags: '--augment <list>', description: 'augmentations', type: 'list' },
    { flags: '--fail <how>', description: 'make the command fail', choices: ['gate', 'error', 'crash'] },
  ],
  examples: ['mlctl demo m'],
  async run({ args, opts }) {
    calls.push({ args, opts });
    if (opts.fail === 'gate') return { exitCode: 3, result: { gates: ['accuracy 0.5 < 0.9'] }, text: 'gate failed' };
    if (opts.fail === 'error') throw new MlctlError('DATA_DIR_MISSING', ['/nope']);
    if (opts.fail === 'crash') throw new TypeError('boom');
    return { result: { model: args[0], epochs: opts.epochs }, text: `trained ${args[0]}` };
  },
};

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (err.push(String(s)), true));
  return { out, err };
}

afterEach(() => {
  vi.restoreAllMocks();
  calls.length = 0;
});

const argv = (...a: string[]) => ['node', 'mlctl', ...a];

describe('parseCLI', () => {
  it('parses typed options with defaults from the table', () => {
    const p = parseCLI(argv('demo', 'm1', 'x', 'y', '--epochs', '3', '--lr', '1e-4', '--augment', 'flip, rotate'), [demo])!;
    expect(p.command).toEqual(['demo']);
    expect(p.args).toEqual(['m1', ['x', 'y']]);
    expect(p.opts).toMatchObject({ epochs: 3, lr: 0.0001, head: 'flatten', augment: ['flip', 'rotate'], backend: 'auto' });
  });

  it('rejects bad values, unknown options and choices as usage errors', () => {
    expect(() => parseCLI(argv('demo', 'm', '--epochs', '2.5'), [demo])).toThrow(/whole number/);
    expect(() => parseCLI(argv('demo', 'm', '--epochs', '0'), [demo])).toThrow(/≥ 1/);
    expect(() => parseCLI(argv('demo', 'm', '--lr', 'fast'), [demo])).toThrow(/expects a number/);
    expect(() => parseCLI(argv('demo', 'm', '--head', 'mlp'), [demo])).toThrow(/Allowed choices/);
    expect(() => parseCLI(argv('demo', 'm', '--nope'), [demo])).toThrow(/unknown option/);
    expect(() => parseCLI(argv('demo'), [demo])).toThrow(/missing required argument/);
  });

  it('reads defaults from the environment (MLCTL_BACKEND)', () => {
    process.env.MLCTL_BACKEND = 'cpu';
    try {
      expect(parseCLI(argv('demo', 'm'), [demo])!.opts.backend).toBe('cpu');
    } finally {
      delete process.env.MLCTL_BACKEND;
    }
  });
});

describe('main', () => {
  it('prints text on success and exits 0', async () => {
    const { out } = capture();
    expect(await main(argv('demo', 'm1'), [demo])).toBe(0);
    expect(out.join('')).toBe('trained m1\n');
  });

  it('--json prints exactly one JSON document on stdout', async () => {
    const { out } = capture();
    expect(await main(argv('demo', 'm1', '--json', '--epochs', '4'), [demo])).toBe(0);
    const doc = JSON.parse(out.join(''));
    expect(doc).toMatchObject({ ok: true, command: 'demo', exitCode: 0, model: 'm1', epochs: 4 });
  });

  it('maps usage errors to 2, MlctlErrors to their code, gates to 3 and crashes to 1', async () => {
    const { out, err } = capture();
    expect(await main(argv('demo', 'm', '--epochs', 'x'), [demo])).toBe(2);
    expect(await main(argv('nonsense'), [demo])).toBe(2);
    expect(await main(argv(), [demo])).toBe(2);
    expect(await main(argv('demo', 'm', '--fail', 'gate'), [demo])).toBe(3);
    expect(await main(argv('demo', 'm', '--fail', 'error'), [demo])).toBe(1);
    expect(err.join('')).toMatch(/dataset folder \/nope does not exist/);
    expect(await main(argv('demo', 'm', '--fail', 'crash'), [demo])).toBe(1);
    expect(err.join('')).toMatch(/boom/);
    out.length = 0;
    expect(await main(argv('demo', 'm', '--fail', 'error', '--json'), [demo])).toBe(1);
    expect(JSON.parse(out.join(''))).toMatchObject({ ok: false, exitCode: 1, error: { code: 'DATA_DIR_MISSING' } });
  });

  it('--help and --version exit 0; help lists examples and exit codes', async () => {
    const { out } = capture();
    expect(await main(argv('--version'), [demo])).toBe(0);
    expect(out.join('')).toMatch(/^\d+\.\d+\.\d+/);
    out.length = 0;
    expect(await main(argv('demo', '--help'), [demo])).toBe(0);
    const help = out.join('');
    expect(help).toContain('$ mlctl demo m');
    expect(help).toContain('Exit codes:');
    expect(help).toContain('--epochs <n>');
  });

  it('runs the real datasets command end to end', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const { out } = capture();
      expect(await main(argv('datasets', 'synth', '--out', dir, '--classes', '2', '--per-class', '3', '--size', '16', '--json'))).toBe(0);
      expect(JSON.parse(out.join(''))).toMatchObject({ ok: true, files: 6, classes: ['circle', 'square'] });
      out.length = 0;
      expect(await main(argv('datasets', 'inspect', dir, '--json', '--validation-split', '0.34'))).toBe(0);
      const doc = JSON.parse(out.join(''));
      expect(doc.perClass).toEqual([
        { class: 'circle', train: 2, val: 1, test: 0 },
        { class: 'square', train: 2, val: 1, test: 0 },
      ]);
    } finally {
      await cleanup();
    }
  });
});
