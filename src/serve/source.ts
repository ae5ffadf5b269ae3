// Where served models come from. The repository loads every version through a ModelSource, and whatever is read
// about a version afterwards (the audit log's re-check of what is served) goes through it too — nothing downstream
// opens package files on its own. Today: package directories on this machine (a package, a model directory with
// numeric versions, a folder of models, NAME / NAME@VERSION / NAME:TAG under the artifacts root). A registry
// reference or a remote URL is one more implementation that hands out the same SourceVersions.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { sha256 } from '../artifacts/hash.js';
import { MANIFEST_FILE } from '../artifacts/manifest.js';
import { loadPackage, verifyPackage, type LoadedPackage } from '../artifacts/package.js';
import { MlctlError } from '../errors.js';
import { findPackageDirs, type VersionPolicy } from './discover.js';

/** One loadable model version. */
export interface SourceVersion {
  /** Where it lives (a package directory today): named in logs, errors and audit lines, and what hot reload tracks. */
  readonly location: string;
  /** Its model name and version as the location gives them before loading (0 when it does not say). */
  readonly name: string;
  readonly version: number;
  /** Read and check it (file hashes, and whatever signature and key rules the source was made with). */
  load(): Promise<LoadedPackage>;
  /** Check that what was loaded is still what the source holds: its manifest's hash; with `deep`, every file. */
  recheck(pkg: LoadedPackage, opts?: { deep?: boolean }): Promise<void>;
}

export interface ModelSource {
  /** What it was made from, for messages (a path or NAME today). */
  readonly ref: string;
  /** The versions it holds: every one, or the latest of each model. */
  versions(policy: VersionPolicy): Promise<SourceVersion[]>;
}

export interface PackageDirOptions {
  /** Reads a package directory (default: loadPackage with hash checks); serve passes its signature and key rules. */
  loadPackage?: (dir: string) => Promise<LoadedPackage>;
  /** A model directory's latest version may be one a quality gate rejected (else the newest one not rejected). */
  allowRejected?: boolean;
}

/** A package directory as a SourceVersion. */
export function packageDirVersion(dir: string, opts: PackageDirOptions = {}): SourceVersion {
  const v = Number(path.basename(dir));
  return {
    location: dir,
    name: path.basename(path.dirname(dir)),
    version: Number.isInteger(v) ? v : 0,
    load: () => (opts.loadPackage ?? loadPackage)(dir),
    async recheck(pkg, o = {}) {
      const onDisk = sha256(readFileSync(path.join(dir, MANIFEST_FILE)));
      if (onDisk !== pkg.manifestSha256) {
        throw new MlctlError('PACKAGE_HASH_MISMATCH', [dir, `mlctl.json hashes to ${onDisk.slice(0, 12)}…, the loaded manifest to ${pkg.manifestSha256.slice(0, 12)}…`]);
      }
      if (o.deep) await verifyPackage(dir, pkg.manifest);
    },
  };
}

/** Packages on this machine, found from what `mlctl serve MODEL_OR_DIR` was given (serve/discover.ts). */
export function packageDirSource(ref: string, opts: PackageDirOptions = {}): ModelSource {
  return {
    ref,
    async versions(policy) {
      return (await findPackageDirs(ref, policy, { allowRejected: opts.allowRejected })).map((dir) => packageDirVersion(dir, opts));
    },
  };
}
