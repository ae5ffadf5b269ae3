// Preload (`node --import ./test/helpers/record-imports.mjs …`) that records every module a process loads into the
// file named by MLCTL_IMPORT_LOG: ESM resolutions through a module.register() resolve hook (written from the hooks
// thread as they happen) and, at exit, every CommonJS module in the require cache.
import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';

const file = process.env.MLCTL_IMPORT_LOG;
if (!file) throw new Error('record-imports: set MLCTL_IMPORT_LOG to the file to write');
register('./record-imports-hooks.mjs', import.meta.url, { data: { file } });
process.on('exit', () => {
  const cache = createRequire(import.meta.url).cache;
  appendFileSync(file, Object.keys(cache).map((p) => `cjs ${p}\n`).join(''));
});
