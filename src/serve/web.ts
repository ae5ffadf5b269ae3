// The serve plugins of the web side: the try-it page at / (ui.ts) and the API docs at /openapi.json and /docs
// (openapi.ts), both on by default; --no-ui and --no-docs turn them off.
import { docsPlugin, openApiCollector } from './openapi.js';
import { plug, type ServePlugin } from './server.js';
import { uiPlugin } from './ui.js';

export interface WebSetup {
  /** Registered before every other plugin: the OpenAPI collector must see each route, model control's included. */
  first: ServePlugin[];
  /** Registered after the security plugins, so the pages carry their headers (CORS, CSP) and pass auth as 'page'. */
  pages: ServePlugin[];
  /** What `mlctl serve` reports about them (paths). */
  info: Record<string, string>;
}

export function webPlugins(opts: { ui?: unknown; docs?: unknown }): WebSetup {
  const ui = opts.ui !== false;
  const docs = opts.docs !== false;
  return {
    first: docs ? [plug(openApiCollector, {})] : [],
    pages: [...(docs ? [plug(docsPlugin, {})] : []), ...(ui ? [plug(uiPlugin, {})] : [])],
    info: { ...(ui ? { page: '/' } : {}), ...(docs ? { docs: '/docs', openapi: '/openapi.json' } : {}) },
  };
}
