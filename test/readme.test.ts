// The README's command reference is generated from the CLI's option table; this keeps the two from drifting.
import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { renderReference } from '../scripts/readme-reference.js';

describe('README', () => {
  it('command reference matches the CLI option table (regenerate: npx tsx scripts/readme-reference.ts)', async () => {
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    expect(readme).toContain(renderReference());
  });

  it('opens with the install-and-run and test commands', async () => {
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    const firstBlock = /```sh\n([\s\S]*?)```/.exec(readme)![1]!;
    expect(firstBlock).toMatch(/^npm ci && npm run quickstart/m);
    expect(firstBlock).toMatch(/^npm test/m);
  });
});
