// The page at `/` (serve plugin): pick a model, send an image, see the top-k labels and the model's metadata. Its
// HTML, JS and CSS are files under ui/ served by mlctl itself under a strict Content-Security-Policy (no inline
// code, nothing from another origin); GET /ui/models is the page's one JSON call and needs a key like metadata does.
import type { FastifyInstance, FastifyReply } from 'fastify';
import fp from 'fastify-plugin';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SERVER_VERSION } from './routes/common.js';
import type { ServedModel } from './types.js';

/** ui/ beside src/ and dist/ (both compile this file one level below the package root's children). */
export const UI_DIR = fileURLToPath(new URL('../../ui/', import.meta.url));

const ASSETS: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
  'icon.svg': 'image/svg+xml',
};

/**
 * Scripts and styles only from this server, images also from blob:/data: (previews, camera stills), requests only
 * back to this origin; never framed.
 */
export const PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** What the page shows of a loaded model (a strict subset of the manifest: no paths, no keys). */
export function modelSummary(m: ServedModel, versions: number[]) {
  const man = m.manifest;
  const input = man.input;
  return {
    name: m.name,
    version: m.version,
    versions,
    task: man.task,
    labels: man.labels,
    input:
      input.kind === 'image'
        ? { kind: 'image', height: input.height, width: input.width, channels: input.channels, preprocessing: input.preprocessing.mode }
        : input.kind === 'tabular'
          ? { kind: input.kind, features: input.features.length }
          : { kind: input.kind, tensors: m.inputs },
    output: man.output.kind === 'tensors' ? { kind: man.output.kind, tensors: m.outputs } : { kind: man.output.kind, size: man.output.size },
    engine: m.engine,
    platform: m.platform,
    createdAt: man.createdAt,
    lineage: man.lineage.map((l) => ({ op: l.op, at: l.at, ...(l.from ? { from: { name: l.from.name, version: l.from.version } } : {}) })),
    metrics: man.metrics ?? {},
    // A version a quality gate rejected (served only with --allow-rejected): the page marks it.
    ...(man.status === 'rejected' ? { status: 'rejected', statusReason: man.statusReason ?? '' } : { status: 'ok' }),
  };
}

export interface UiOptions {
  /** Folder holding index.html, app.js, app.css and icon.svg (default: the package's ui/). */
  dir?: string;
}

async function ui(app: FastifyInstance, opts: UiOptions = {}): Promise<void> {
  const dir = opts.dir ?? UI_DIR;
  // Read once: the page is a few KiB, and a missing file should fail at start-up, not on the first visitor.
  const files = Object.fromEntries(Object.keys(ASSETS).map((f) => [f, readFileSync(dir + f)]));
  const send = (reply: FastifyReply, file: string) =>
    reply.header('content-type', ASSETS[file]!).header('content-security-policy', PAGE_CSP).header('cache-control', 'no-cache').send(files[file]);
  const page = { config: { kind: 'page' as const }, schema: { hide: true } };
  app.get('/', page, async (_request, reply) => send(reply, 'index.html'));
  for (const f of ['app.js', 'app.css', 'icon.svg']) app.get(`/ui/${f}`, page, async (_request, reply) => send(reply, f));

  app.get('/ui/models', { config: { kind: 'metadata' }, schema: { hide: true } }, async () => {
    const loaded = app.mlctl.repo.list().filter((m) => m.ready);
    const versions = (name: string) => loaded.filter((m) => m.name === name).map((m) => m.version).sort((a, b) => a - b);
    const models = loaded.sort((a, b) => a.name.localeCompare(b.name) || b.version - a.version).map((m) => modelSummary(m, versions(m.name)));
    return { server: { name: 'mlctl', version: SERVER_VERSION }, models };
  });
}

/** The page at `/` and its assets: after hygiene (headers) and auth (GET /ui/models needs a key like metadata does). */
export const uiPlugin = fp<UiOptions>(ui, { name: 'mlctl-ui', dependencies: ['mlctl-core', 'mlctl-hygiene', 'mlctl-auth'], decorators: { fastify: ['mlctl'] }, encapsulate: true });
