// The shape of src/: no import cycles between files or folders, and the layering cli → commands → core: command
// folders stand side by side (none imports another), the core never imports a command or the CLI, and runtime never
// imports engines (engines register into it). bench/ joins the file graph. Imports are read with TypeScript's own
// pre-processor, type-only imports and dynamic import() of literal paths included.
import ts from 'typescript';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const SRC = path.join(ROOT, 'src');
const BENCH = path.join(ROOT, 'bench');

/** The command folders: each is one `mlctl` command family, built on the core below it. */
const COMMANDS = ['train', 'optimize', 'evaluate', 'export', 'serve', 'predict', 'watch', 'registry', 'import'];
const CLI = 'cli';
/** src/index.ts, the library API: like the CLI, a top that may import every command. */
const API = 'index';

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => path.join(e.parentPath, e.name));
}

/** file → the src files it imports (static, re-exports, type-only and literal dynamic imports). */
function importGraph(): Map<string, string[]> {
  const files = [...sourceFiles(SRC), ...sourceFiles(BENCH)];
  const known = new Set(files);
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    const targets = info.importedFiles
      .map((f) => f.fileName)
      .filter((spec) => spec.startsWith('.'))
      .map((spec) => path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts')))
      .filter((t) => known.has(t));
    graph.set(file, [...new Set(targets)]);
  }
  return graph;
}

/** Strongly connected components with more than one member (Tarjan), i.e. the import cycles. */
function cycles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(scc.map((f) => (path.isAbsolute(f) ? path.relative(SRC, f) : f)).sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}

/** The top-level unit a file belongs to: its folder under src/, or the file itself (errors.ts). */
const unitOf = (file: string) => (file.startsWith(BENCH + path.sep) ? 'bench' : path.relative(SRC, file).split(path.sep)[0]!.replace(/\.ts$/, ''));

/** "from → to" for every folder edge breaking `rule` (from, to are folder names). */
function violations(folders: Map<string, string[]>, rule: (from: string, to: string) => boolean): string[] {
  return [...folders].flatMap(([from, tos]) => tos.filter((to) => rule(from, to)).map((to) => `${from} → ${to}`)).sort();
}

/** Folder → folders it imports from. */
function folderGraph(graph: Map<string, string[]>): Map<string, string[]> {
  const folders = new Map<string, Set<string>>();
  for (const [file, targets] of graph) {
    const from = unitOf(file);
    const set = folders.get(from) ?? new Set<string>();
    for (const t of targets) if (unitOf(t) !== from) set.add(unitOf(t));
    folders.set(from, set);
  }
  return new Map([...folders].map(([k, v]) => [k, [...v]]));
}

describe('src/ structure', () => {
  const graph = importGraph();

  it('reads the imports it checks (the checker itself works)', () => {
    expect(graph.size).toBeGreaterThan(50);
    expect(graph.get(path.join(SRC, 'engines', 'index.ts'))).toContain(path.join(SRC, 'engines', 'onnx.ts'));
    expect(cycles(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']]]))).toEqual([['a', 'b', 'c']]);
  });

  it('has no import cycle between files', () => {
    expect(cycles(graph)).toEqual([]);
  });

  it('has no import cycle between folders', () => {
    expect(cycles(folderGraph(graph))).toEqual([]);
  });

  it('knows every folder it layers (a new top-level folder is classified on purpose)', () => {
    const folders = [...folderGraph(graph).keys()];
    for (const c of COMMANDS) expect(folders).toContain(c);
    expect(folders).toContain(CLI);
  });

  it('keeps command folders side by side: none imports another', () => {
    const folders = folderGraph(graph);
    expect(violations(folders, (from, to) => COMMANDS.includes(from) && COMMANDS.includes(to))).toEqual([]);
    // The rule itself bites: a command importing another is reported.
    expect(violations(new Map([['serve', ['export', 'runtime']]]), (from, to) => COMMANDS.includes(from) && COMMANDS.includes(to))).toEqual(['serve → export']);
  });

  it('keeps the core below the commands: no core folder imports a command or the CLI', () => {
    const core = (f: string) => f !== CLI && f !== API && f !== 'bench' && !COMMANDS.includes(f);
    expect(violations(folderGraph(graph), (from, to) => core(from) && (COMMANDS.includes(to) || to === CLI || to === API))).toEqual([]);
  });

  it('lets engines plug into runtime, never the other way round', () => {
    expect(folderGraph(graph).get('runtime')).not.toContain('engines');
  });
});
