// The docs' generated pages (docs/cli.md: command reference; docs/errors.md: exit and error codes) come from the
// CLI's option table and the error registry; this keeps them from drifting, and keeps the README a front page
// whose first commands are the two that work on a fresh machine.
import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { BLOCKS, PAGES, blocksIn, regenerate, renderErrorCodes, renderExitCodes, renderReference } from '../scripts/readme-reference.js';
import { ERRORS } from '../src/errors.js';

const read = (file: string) => readFile(new URL(`../${file}`, import.meta.url), 'utf8');

describe('generated docs pages', () => {
  it('match the option table and the error registry (regenerate: npx tsx scripts/readme-reference.ts)', async () => {
    const cli = await read('docs/cli.md');
    const errors = await read('docs/errors.md');
    expect(cli).toContain(renderReference());
    expect(errors).toContain(renderExitCodes());
    expect(errors).toContain(renderErrorCodes());
    for (const [page, names] of Object.entries(PAGES)) {
      const text = await read(page);
      expect(regenerate(text, names, page), `${page} is stale`).toBe(text);
    }
  });

  it('every block is generated into exactly one page, and the README holds none', async () => {
    const placed = Object.values(PAGES).flat().sort();
    expect(placed).toEqual(Object.keys(BLOCKS).sort());
    for (const [page, names] of Object.entries(PAGES)) expect(blocksIn(await read(page)).sort(), page).toEqual([...names].sort());
    // A merge from a branch that regenerated the old README blocks brings them back: they belong in the pages.
    const stray = blocksIn(await read('README.md'));
    expect(stray, `README.md holds generated blocks (${stray.join(', ')}): delete them there and run npx tsx scripts/readme-reference.ts (they live in ${Object.keys(PAGES).join(', ')})`).toEqual([]);
  });

  it('documents every registry code with its exit, HTTP and gRPC status, and every required option', async () => {
    const errors = await read('docs/errors.md');
    for (const [code, def] of Object.entries(ERRORS)) expect(errors).toContain(`| \`${code}\` | ${def.exit} | ${def.http} | ${def.grpc} |`);
    expect(await read('docs/cli.md')).toMatch(/\| `-d, --data <dir>` \| image folder[^\n]*\(required\) \|/);
  });
});

describe('README', () => {
  it('opens with the install-and-run and test commands', async () => {
    const readme = await read('README.md');
    const firstBlock = /```sh\n([\s\S]*?)```/.exec(readme)![1]!;
    expect(firstBlock).toMatch(/^npm ci && npm run quickstart/m);
    expect(firstBlock).toMatch(/^npm test/m);
  });

  it('runs the test command CI runs (.ci/run) and the quickstart package.json defines', async () => {
    const ci = await read('.ci/run');
    const lastCommand = ci.trim().split('\n').filter((l) => l.trim() && !l.trim().startsWith('#')).at(-1)!.trim();
    const firstBlock = /```sh\n([\s\S]*?)```/.exec(await read('README.md'))![1]!;
    expect(firstBlock.split('\n').map((l) => l.replace(/#.*$/, '').trim())).toContain(lastCommand);
    const pkg = JSON.parse(await read('package.json')) as { scripts: Record<string, string> };
    expect(pkg.scripts.quickstart).toBeDefined();
    expect(pkg.scripts.test).toBeDefined();
  });

  it('is a front page: at most 250 lines', async () => {
    expect((await read('README.md')).split('\n').length).toBeLessThanOrEqual(250);
  });
});
