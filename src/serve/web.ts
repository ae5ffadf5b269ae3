// The `mlctl serve` web extension: the try-it page at / (ui.ts) and the API docs at /openapi.json and /docs
// (openapi.ts), both on by default; --no-ui and --no-docs turn them off.
import { SERVE_EXTENSIONS, type ServeExtension } from './extensions.js';
import { docsPlugin, openApiCollector } from './openapi.js';
import { WEB_OPTIONS } from './options.js';
import { uiPlugin } from './ui.js';

export const webExtension: ServeExtension = {
  name: 'web',
  options: [...WEB_OPTIONS],
  async setup({ opts }) {
    const ui = opts.ui !== false;
    const docs = opts.docs !== false;
    if (!ui && !docs) return undefined;
    return {
      server: {
        ...(docs ? { firstPlugins: [openApiCollector] } : {}),
        beforeRoutes: (app) => {
          if (docs) void app.register(docsPlugin);
          if (ui) void app.register(uiPlugin);
        },
      },
      describe: () => ({ ...(ui ? { page: '/' } : {}), ...(docs ? { docs: '/docs', openapi: '/openapi.json' } : {}) }),
    };
  },
};

SERVE_EXTENSIONS.push(webExtension);
