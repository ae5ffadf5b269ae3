// Worker threads that run one of mlctl's own modules: the compiled .js next to the caller, or, when mlctl runs from
// its TypeScript sources (tsx, vitest), the .ts file with tsx registered in the worker first.
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/** Start a worker on module `name` (without extension) beside `callerUrl` (the caller's import.meta.url). */
export function moduleWorker(callerUrl: string, name: string, workerData?: unknown): Worker {
  const fromSource = callerUrl.endsWith('.ts');
  const entry = new URL(`./${name}${fromSource ? '.ts' : '.js'}`, callerUrl).href;
  let code = `import(${JSON.stringify(entry)})`;
  if (fromSource) {
    const tsxDir = path.dirname(createRequire(callerUrl).resolve('tsx/package.json'));
    const api = pathToFileURL(path.join(tsxDir, 'dist/esm/api/index.mjs')).href;
    code = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`;
  }
  return new Worker(code, { eval: true, workerData });
}
