// The README's generated sections (command reference, exit codes, error codes) come from the CLI's option table
// and the error registry; this keeps them from drifting.
import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { regenerate, renderErrorCodes, renderExitCodes, renderReference } from '../scripts/readme-reference.js';
import { ERRORS } from '../src/errors.js';

const readmeText = () => readFile(new URL('../README.md', import.meta.url), 'utf8');

describe('README', () => {
  it('generated sections match the option table and the error registry (regenerate: npx tsx scripts/readme-reference.ts)', async () => {
    const readme = await readmeText();
    expect(readme).toContain(renderReference());
    expect(readme).toContain(renderExitCodes());
    expect(readme).toContain(renderErrorCodes());
    expect(regenerate(readme)).toBe(readme);
  });

  it('documents every registry code with its exit, HTTP and gRPC status, and every required option', async () => {
    const readme = await readmeText();
    for (const [code, def] of Object.entries(ERRORS)) expect(readme).toContain(`| \`${code}\` | ${def.exit} | ${def.http} | ${def.grpc} |`);
    expect(readme).toMatch(/\| `-d, --data <dir>` \| image folder[^\n]*\(required\) \|/);
  });

  it('opens with the install-and-run and test commands', async () => {
    const readme = await readmeText();
    const firstBlock = /```sh\n([\s\S]*?)```/.exec(readme)![1]!;
    expect(firstBlock).toMatch(/^npm ci && npm run quickstart/m);
    expect(firstBlock).toMatch(/^npm test/m);
  });
});
