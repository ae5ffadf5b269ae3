// Vitest global setup: probe the Debian tools once for the whole run, print one line per missing package, and
// hand the answers to every test file (inject('tools')), so tests that need a tool skip instead of failing.
import type { TestProject } from 'vitest/node';
import { probeTools, SYSTEM_TOOLS, type SystemTool, type ToolAvailability } from './system-tools.js';

declare module 'vitest' {
  export interface ProvidedContext {
    tools: ToolAvailability;
  }
}

export default function setup(project: TestProject) {
  const tools = probeTools();
  for (const [name, ok] of Object.entries(tools)) {
    const t: SystemTool = SYSTEM_TOOLS[name as keyof typeof SYSTEM_TOOLS];
    if (!ok) process.stdout.write(`skipping tests that need ${t.pkg} (${t.for}): ${t.remedy ?? `not installed — apt-get install ${t.pkg}`}\n`);
  }
  project.provide('tools', tools);
}
