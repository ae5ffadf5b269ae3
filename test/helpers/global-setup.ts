// Vitest global setup: probe the Debian tools once for the whole run, print one line per missing package, and
// hand the answers to every test file (inject('tools')), so tests that need a tool skip instead of failing; give the run
// its own cache key file (MLCTL_CACHE_KEY_FILE), removed at the end.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { probeTools, SYSTEM_TOOLS, type ToolAvailability } from './system-tools.js';

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
  for (const [name, ok] of Object.entries(tools)) {
    const t = SYSTEM_TOOLS[name as keyof typeof SYSTEM_TOOLS];
    if (!ok) process.stdout.write(`skipping tests that need ${t.pkg} (${t.for}): not installed — apt-get install ${t.pkg}\n`);
  }
  project.provide('tools', tools);
  return () => {
    if (keyDir) rmSync(keyDir, { recursive: true, force: true });
  };
}
