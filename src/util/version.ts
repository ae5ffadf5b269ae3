// mlctl's own version, read once from package.json (for User-Agent strings, discovery payloads and manifests).
import { createRequire } from 'node:module';

export const MLCTL_VERSION: string = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
