// The loaded versions of a repository by name and version, and the 404s a request for anything else gets: a named
// version, or else the newest ready version of the model that no quality gate rejected.
import { notFound } from './errors.js';
import type { ServedModel } from './types.js';

export interface VersionTable<E extends { model: ServedModel }> {
  /** The version asked for, or the newest ready one; a 404 naming what is loaded otherwise. */
  lookup(name: string, version?: number): E;
  /** Every loaded version. */
  all(): E[];
  /** Loaded model names, sorted. */
  names(): string[];
  has(name: string, version: number): boolean;
  at(name: string, version: number): E | undefined;
  add(e: E): void;
  remove(e: E): void;
}

const key = (name: string, version: number) => `${name}@${version}`;

export function createVersionTable<E extends { model: ServedModel }>(): VersionTable<E> {
  const entries = new Map<string, E>();
  const names = () => [...new Set([...entries.values()].map((e) => e.model.name))].sort();
  return {
    lookup(name, version) {
      if (version !== undefined) {
        const e = entries.get(key(name, version));
        if (e) return e;
        const known = [...entries.values()].filter((x) => x.model.name === name).map((x) => x.model.version);
        if (known.length) throw notFound(`model ${name} has no version ${version} (loaded: ${known.join(', ')})`);
        throw notFound(`model ${name} is not loaded (loaded models: ${names().join(', ') || 'none'})`);
      }
      // No version named: the newest ready one that no quality gate rejected (a rejected version loaded with
      // --allow-rejected answers only when asked for by version, or when it is all there is).
      let best: E | undefined;
      const rank = (e: E) => (e.model.manifest.status === 'rejected' ? 0 : 1);
      for (const e of entries.values()) {
        if (e.model.name !== name || !e.model.ready) continue;
        if (!best || rank(e) > rank(best) || (rank(e) === rank(best) && e.model.version > best.model.version)) best = e;
      }
      if (!best) throw notFound(`model ${name} is not loaded (loaded models: ${names().join(', ') || 'none'})`);
      return best;
    },
    all: () => [...entries.values()],
    names,
    has: (name, version) => entries.has(key(name, version)),
    at: (name, version) => entries.get(key(name, version)),
    add: (e) => void entries.set(key(e.model.name, e.model.version), e),
    remove: (e) => void entries.delete(key(e.model.name, e.model.version)),
  };
}
