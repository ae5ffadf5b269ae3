// Vitest global setup: probe the Debian tools once for the whole run, print one line per missing package, and
// hand the answers to every test file (inject('tools')): on a developer machine the tests that need a missing tool
// skip; under CI the test files that need it fail naming it (test/helpers/tools.ts).
import type { TestProject } from 'vitest/node';
import { ciMissingMessage, isCi, probeTools, skipLine, type ToolAvailability, type ToolName } from './system-tools.js';

declare module 'vitest' {
  export interface ProvidedContext {
    tools: ToolAvailability;
  }
}

export default function setup(project: TestProject) {
  const tools = probeTools();
  const ci = isCi();
  for (const [name, ok] of Object.entries(tools)) {
    if (!ok) process.stdout.write(`${ci ? ciMissingMessage(name as ToolName) : skipLine(name as ToolName)}\n`);
  }
  project.provide('tools', tools);
}
