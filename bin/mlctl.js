#!/usr/bin/env node
// Launcher: runs the compiled CLI (dist/, built by `npm run build` / on `npm ci`).
import { main } from '../dist/cli/main.js';

main(process.argv).then((code) => {
  process.exitCode = code;
});
