// The Node versions package.json declares (engines.node) are ones every installed package supports: npm ci on the
// oldest of them must print no EBADENGINE. Reads package-lock.json, so a dependency bump that needs a newer Node
// fails here, in CI, instead of in a user's install log.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// npm's own range semantics (EBADENGINE uses them); semver is installed with sharp, a dependency.
const semver = createRequire(import.meta.url)('semver') as {
  minVersion(range: string): { version: string } | null;
  satisfies(version: string, range: string, opts?: { includePrerelease?: boolean }): boolean;
  validRange(range: string): string | null;
};

interface LockEntry {
  version?: string;
  engines?: { node?: string } | string[];
  dev?: boolean;
  optional?: boolean;
}

const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
const lock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };

describe('engines', () => {
  it('declares a Node range, and the lock file records the same one', () => {
    expect(semver.validRange(pkg.engines.node)).toBeTruthy();
    expect(lock.packages['']?.engines).toEqual(pkg.engines);
  });

  it('every package in package-lock.json supports the oldest Node package.json declares', () => {
    const oldest = semver.minVersion(pkg.engines.node)!.version;
    const unsupported = Object.entries(lock.packages)
      .filter(([where, e]) => where !== '' && e.engines && !Array.isArray(e.engines) && typeof e.engines.node === 'string')
      .filter(([, e]) => !semver.satisfies(oldest, (e.engines as { node: string }).node, { includePrerelease: true }))
      .map(([where, e]) => `${where.replace(/^.*node_modules\//, '')}@${e.version} needs node ${(e.engines as { node: string }).node} (at ${where})`);
    // Each line names the package and where it sits: pin an older release in package.json "overrides", or raise engines.node.
    expect(unsupported, `package.json declares node ${pkg.engines.node}; oldest: ${oldest}`).toEqual([]);
  });

  it('this check can fail: a package that needs Node 22 is caught', () => {
    const oldest = semver.minVersion(pkg.engines.node)!.version;
    expect(semver.satisfies(oldest, '>=22')).toBe(false);
    expect(semver.satisfies(oldest, '18 || 20 || >=22')).toBe(true);
  });
});
