// Worker threads that run one of mlctl's own modules (the compiled .js next to the caller, or, when mlctl runs from
// its TypeScript sources (tsx, vitest), the .ts file with tsx registered in the worker first), and the small
// request/reply protocol they speak: the worker posts {op: 'ready', …} or {op: 'fail', message, code}, then answers
// each {id, …} request with {id, ok, result} or {id, ok: false, message}.
import { parentPort, Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ERRORS, MlctlError, type ErrorCode } from '../errors.js';

/** Start a worker on module `name` (without extension) beside `callerUrl` (the caller's import.meta.url). */
export function moduleWorker(callerUrl: string, name: string, workerData?: unknown, transferList?: ArrayBuffer[]): Worker {
  const fromSource = callerUrl.endsWith('.ts');
  const entry = new URL(`./${name}${fromSource ? '.ts' : '.js'}`, callerUrl).href;
  let code = `import(${JSON.stringify(entry)})`;
  if (fromSource) {
    const tsxDir = path.dirname(createRequire(callerUrl).resolve('tsx/package.json'));
    const api = pathToFileURL(path.join(tsxDir, 'dist/esm/api/index.mjs')).href;
    code = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`;
  }
  return new Worker(code, { eval: true, workerData, transferList });
}

/** A worker's failure as the main thread's error: an mlctl error keeps its code (and so its exit code). */
export function workerFailure(m: { message?: string; code?: unknown }): Error {
  const message = m.message ?? 'the worker failed';
  if (typeof m.code !== 'string' || !(m.code in ERRORS)) return new Error(message);
  const err = new MlctlError(m.code as ErrorCode);
  err.message = message;
  return err;
}

export interface WorkerClient<Ready> {
  /** What the worker said when it was ready. */
  readonly ready: Ready;
  /** Send a request; resolves with the worker's result (rejects with its error, or when the worker is gone). */
  call<T>(request: Record<string, unknown>, transfer?: ArrayBuffer[]): Promise<T>;
  /** Stop the worker; pending and later calls reject. */
  close(): Promise<void>;
}

/** Start a protocol worker (see above) and wait until it is ready. `what` names it in errors. */
export async function startWorkerClient<Ready>(callerUrl: string, name: string, what: string, workerData?: unknown, transferList?: ArrayBuffer[]): Promise<WorkerClient<Ready>> {
  const worker = moduleWorker(callerUrl, name, workerData, transferList);
  const pending = new Map<number, { resolve: (r: never) => void; reject: (e: Error) => void }>();
  let broken: Error | undefined;
  let nextId = 1;
  const failAll = (err: Error) => {
    broken ??= err;
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  type Msg = { op?: 'ready' | 'fail'; id?: number; ok?: boolean; result?: never; message?: string; code?: unknown };
  const ready = await new Promise<Ready>((resolve, reject) => {
    worker.on('message', (m: Msg) => {
      if (m.op === 'ready') return resolve(m as Ready);
      if (m.op === 'fail') return reject(workerFailure(m));
      const p = pending.get(m.id!);
      pending.delete(m.id!);
      if (m.ok) p?.resolve(m.result!);
      else p?.reject(workerFailure(m));
    });
    worker.on('error', (err) => {
      failAll(err);
      reject(err);
    });
    worker.on('exit', (code) => {
      const err = new Error(`the ${what} worker thread exited (code ${code})`);
      failAll(err);
      reject(err);
    });
  }).catch(async (err) => {
    await worker.terminate();
    throw err;
  });
  return {
    ready,
    call<T>(request: Record<string, unknown>, transfer: ArrayBuffer[] = []) {
      if (broken) return Promise.reject(broken);
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (r: never) => void, reject });
        worker.postMessage({ ...request, id }, transfer);
      });
    },
    async close() {
      broken ??= new Error(`the ${what} was closed`);
      await worker.terminate();
    },
  };
}

/**
 * Worker side: post `ready` (from `start`, or `fail` when it throws), then answer every request with `handle`,
 * which returns the result and the buffers to transfer with it.
 */
export async function serveWorkerRequests<S, R extends { id: number }>(start: () => Promise<{ state: S; ready: Record<string, unknown> }>, handle: (state: S, request: R) => Promise<[unknown, ArrayBuffer[]]>): Promise<void> {
  const port = parentPort!;
  let state: S;
  try {
    const s = await start();
    state = s.state;
    port.postMessage({ ...s.ready, op: 'ready' });
  } catch (err) {
    // The code travels with the message so the main thread can tell a package fault (bad key, tampered file) apart.
    port.postMessage({ op: 'fail', message: (err as Error).message, code: (err as { code?: unknown }).code });
    return;
  }
  port.on('message', (r: R) => {
    handle(state, r).then(
      ([result, transfer]) => port.postMessage({ id: r.id, ok: true, result }, transfer),
      (err: Error) => port.postMessage({ id: r.id, ok: false, message: err.message, code: (err as { code?: unknown }).code }),
    );
  });
}
