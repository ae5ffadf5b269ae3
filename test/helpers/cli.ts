// Run mlctl in-process through main(argv), capturing stdout and stderr; with --json the one document is parsed.
// spawnCli runs it as a child process instead, for what needs a process of its own (signals, kills, locks).
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import type { AnyCommand } from '../../src/cli/spec.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  /** How many write() calls stdout took: a --json document is written in one. */
  stdoutWrites: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each command's JSON document has its own shape
  json: any;
}

export interface CliOptions {
  /** Environment for this run only (undefined unsets a variable); the previous values come back afterwards. */
  env?: Record<string, string | undefined>;
  /** The command table main() parses (a test's own commands); mlctl's own by default. */
  commands?: readonly AnyCommand[];
}

/**
 * `mlctl ARGS` in this process. With --json before any "--", stdout must be exactly one JSON document (parsed into
 * `json`); anything else throws, naming what was printed.
 */
export async function runCli(args: string[], opts: CliOptions = {}): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  let stdoutWrites = 0;
  const restoreEnv = setEnv(opts.env ?? {});
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(capture((s) => ((stdout += s), stdoutWrites++)));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(capture((s) => (stderr += s)));
  try {
    const code = await main(['node', 'mlctl', ...args], opts.commands);
    return { code, stdout, stderr, stdoutWrites, json: wantsJson(args) ? parseDocument(stdout, stderr) : undefined };
  } finally {
    out.mockRestore();
    err.mockRestore();
    restoreEnv();
  }
}

/** A write() stand-in: keeps the text and calls a completion callback as a stream would (predict awaits it). */
function capture(sink: (s: string) => void) {
  return (chunk: string | Uint8Array, encodingOrDone?: unknown, done?: unknown): boolean => {
    sink(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    const cb = typeof encodingOrDone === 'function' ? encodingOrDone : done;
    if (typeof cb === 'function') process.nextTick(cb as () => void);
    return true;
  };
}

function setEnv(env: Record<string, string | undefined>): () => void {
  const saved = Object.entries(env).map(([k]) => [k, process.env[k]] as const);
  const put = ([k, v]: readonly [string, string | undefined]) => (v === undefined ? delete process.env[k] : (process.env[k] = v));
  Object.entries(env).forEach(put);
  return () => saved.forEach(put);
}

/** main()'s own rule: --json counts before a "--" terminator only. */
function wantsJson(args: string[]): boolean {
  const end = args.indexOf('--');
  return (end < 0 ? args : args.slice(0, end)).includes('--json');
}

function parseDocument(stdout: string, stderr: string): unknown {
  try {
    return JSON.parse(stdout);
  } catch (e) {
    throw new Error(`--json printed no single JSON document on stdout (${(e as Error).message})\nstdout: ${stdout.slice(0, 2000)}\nstderr: ${stderr.slice(-2000)}`);
  }
}

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
// The CLI from source (tsx), as bin/mlctl.js runs it from dist/: main() with node-style argv.
const ENTRY = `const { main } = await import(${JSON.stringify(path.join(repoRoot, 'src/cli/main.ts'))}); process.exitCode = await main(['node', 'mlctl', ...process.argv.slice(1)]);`;

export interface CliProcess {
  child: ChildProcess;
  /** The exit code once the process has ended and its output is all read (null when a signal ended it). */
  exited: Promise<number | null>;
  out: () => string;
  err: () => string;
  /** The first match of `pattern` in stderr so far or to come; rejects, with stderr, if the process ends or `ms` pass first. */
  waitFor: (pattern: RegExp, ms?: number) => Promise<RegExpExecArray>;
  /** The URL in serve's "serving on URL" log line (`waitFor` on it). */
  listening: () => Promise<string>;
  /** The addresses serve bound (start it with --port 0 [--grpc-port 0]), from the same line. */
  serving: () => Promise<Serving>;
}

/** Where a `mlctl serve` started with --port 0 (and --grpc-port 0) listens, as its "serving on" log line says. */
export interface Serving {
  url: string;
  port: number;
  /** The gRPC port, when serve runs gRPC. */
  grpcPort?: number;
}

/** serve's start-up log line (JSON on stderr, not printed with --quiet): `"msg":"serving on URL"` with `grpc: "host:port"`. */
const SERVING_LINE = /^(\{.*"msg":"serving on [^"]+".*\})\n/m;

function parseServing(line: string): Serving {
  const doc = JSON.parse(line) as { url: string; grpc?: string };
  return { url: doc.url, port: Number(new URL(doc.url).port), ...(doc.grpc ? { grpcPort: Number(doc.grpc.split(':').pop()) } : {}) };
}

/**
 * The addresses a `mlctl serve` child (any launcher; --port 0, no --quiet) reports once it listens: bind port 0 where
 * the server starts instead of guessing a free port beforehand, which another process may take meanwhile.
 * Rejects with the child's stderr if it exits first or `ms` pass.
 */
export function servingOn(child: ChildProcess, ms = 100_000): Promise<Serving> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    const done = (err?: Error, s?: Serving) => {
      clearTimeout(timer);
      child.stderr!.off('data', onData);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(s!);
    };
    const onData = (d: Buffer | string) => {
      stderr += d;
      const m = SERVING_LINE.exec(stderr);
      if (m) done(undefined, parseServing(m[1]!));
    };
    const onExit = (code: number | null) => done(new Error(`mlctl serve exited (${code}) before it listened; stderr:\n${stderr}`));
    const timer = setTimeout(() => done(new Error(`mlctl serve did not listen within ${ms} ms; stderr:\n${stderr}`)), ms);
    child.stderr!.on('data', onData);
    child.once('exit', onExit);
  });
}

/** The argv that runs `mlctl ARGS` from source in a process of its own (for shell pipelines: `… | head`). */
export function cliArgv(args: string[]): string[] {
  return [process.execPath, '--import', 'tsx', '--input-type=module', '-e', ENTRY, '--', ...args];
}

/** `mlctl ARGS` as a child process, in this process's environment (see mlctlHome) with NO_COLOR=1. */
export function spawnCli(args: string[]): CliProcess {
  const [node, ...argv] = cliArgv(args);
  const child = spawn(node!, argv, {
    cwd: repoRoot,
    env: { ...process.env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  // A start-up on a loaded machine can take most of a test's 120 s: the default leaves just enough to report stderr.
  const waitFor = (pattern: RegExp, ms = 100_000) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const fail = (why: string) => reject(new Error(`mlctl ${args.join(' ')} ${why} before printing ${pattern}; stderr:\n${stderr}`));
      const timer = setTimeout(() => fail(`took over ${ms} ms`), ms).unref();
      const check = () => {
        const m = pattern.exec(stderr);
        if (!m) return;
        clearTimeout(timer);
        child.stderr!.off('data', check);
        resolve(m);
      };
      check();
      child.stderr!.on('data', check);
      void exited.then(() => (clearTimeout(timer), fail('exited')));
    });
  const listening = () => waitFor(/"msg":"serving on (http:\/\/[^"]+)"/).then((m) => m[1]!);
  const serving = () => waitFor(SERVING_LINE).then((m) => parseServing(m[1]!));
  return { child, exited, out: () => stdout, err: () => stderr, waitFor, listening, serving };
}
