// Vitest global setup: probe the Debian tools once for the whole run, print one line per missing package, and
// hand the answers to every test file (inject('tools')): on a developer machine the tests that need a missing tool
// skip; under CI the test files that need it fail naming it (test/helpers/tools.ts). The run also gets its own cache
// key file (MLCTL_CACHE_KEY_FILE), removed at the end.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { ciMissingMessage, isCi, probeTools, skipLine, type ToolAvailability, type ToolName } from './system-tools.js';

declare module 'vitest' {
  export interface ProvidedContext {
    tools: ToolAvailability;
  }
}

export default function setup(project: TestProject) {
  // mlctl keeps its cache key outside the cache (~/.config/mlctl/cache.key by default): tests use one of their own,
  // in a temporary folder removed at the end (the forks inherit the variable), and write nothing in the home folder.
  let keyDir: string | undefined;
  if (!process.env.MLCTL_CACHE_KEY_FILE) {
    keyDir = mkdtempSync(path.join(os.tmpdir(), 'mlctl-test-cache-key-'));
    process.env.MLCTL_CACHE_KEY_FILE = path.join(keyDir, 'cache.key');
  }
  const tools = probeTools();
  const ci = isCi();
  for (const [name, ok] of Object.entries(tools)) {
    if (!ok) process.stdout.write(`${ci ? ciMissingMessage(name as ToolName) : skipLine(name as ToolName)}\n`);
  }
  project.provide('tools', tools);
  return () => {
    if (keyDir) rmSync(keyDir, { recursive: true, force: true });
  };
}
