// The serve plugins of the web side: the try-it page at / (ui.ts) and the API docs at /openapi.json and /docs
// (openapi.ts), both on by default; --no-ui and --no-docs turn them off. The OpenAPI collector that the docs need
// is registered by buildServer itself (ServerOptions.docs), before any route.
import type { ServeConfig } from './config.js';
import { docsPlugin } from './openapi.js';
import { plug, type ServePlugin } from './server.js';
import { uiPlugin } from './ui.js';

export interface WebSetup {
  /** The page and the docs routes (each declares the plugins it must follow). */
  pages: ServePlugin[];
  /** Whether buildServer collects the API description (ServerOptions.docs). */
  docs: boolean;
  /** What `mlctl serve` reports about them (paths). */
  info: Record<string, string>;
}

export function webPlugins(web: ServeConfig['web']): WebSetup {
  return {
    pages: [...(web.docs ? [plug(docsPlugin, {})] : []), ...(web.ui ? [plug(uiPlugin, {})] : [])],
    docs: web.docs,
    info: { ...(web.ui ? { page: '/' } : {}), ...(web.docs ? { docs: '/docs', openapi: '/openapi.json' } : {}) },
  };
}
