// Load a watch configuration: the YAML file (optional), then command-line flags laid over it as nodes without
// a position, validated together by one reader so every mistake names its line and column (or the flag).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Document, isMap, type Node } from 'yaml';
import { PREPROCESSING_MODES } from '../../data/preprocess.js';
import { ENGINES } from '../../runtime/engine.js';
import { readCamera, readHeaders } from './cameras.js';
import { configError, displayPath, Field, parseYaml, type MapReader, type Origin } from './reader.js';
import { loadRulesFile, readRules } from './rules.js';
import { readSinks } from './sinks.js';
import { REMOTE_INPUTS, type InferenceConfig, type RemoteInput, type WatchConfig } from './types.js';

/** What the command line adds to (or overrides in) the file; each maps onto one config key. */
export interface WatchOverrides {
  model?: string;
  server?: string;
  serverModel?: string;
  labels?: string[];
  cameras?: Array<{ name: string; url: string }>;
  fps?: number;
  rulesFile?: string;
  webhook?: string;
  webhookSecret?: string;
  webhookFormat?: string;
  mqtt?: string;
  exec?: string;
  stateDir?: string;
  statusPort?: number;
  statusHost?: string;
  engine?: string;
  maxBatch?: number;
}

/** Lay the flags over the document: scalars replace, cameras and notifiers are appended. */
function applyOverrides(doc: Document, o: WatchOverrides): void {
  if (!isMap(doc.contents)) doc.contents = doc.createNode({}) as never;
  const set = (key: string, value: unknown) => value !== undefined && doc.setIn([key], doc.createNode(value));
  const add = (key: string, value: unknown) => {
    if (!doc.hasIn([key]) || doc.getIn([key]) === null) doc.setIn([key], doc.createNode([]));
    doc.addIn([key], doc.createNode(value));
  };
  // Paths on the command line are relative to the working directory, not to the config file.
  const abs = (p: string | undefined) => (p && (p.startsWith('.') || p.startsWith('/')) ? path.resolve(p) : p);
  set('model', abs(o.model));
  if (o.server) set('server', { url: o.server, ...(o.serverModel ? { model: o.serverModel } : {}) });
  set('labels', o.labels);
  set('fps', o.fps);
  set('engine', o.engine);
  set('max_batch', o.maxBatch);
  set('state_dir', o.stateDir && path.resolve(o.stateDir));
  set('rules_file', o.rulesFile && path.resolve(o.rulesFile));
  if (o.statusPort !== undefined || o.statusHost !== undefined) {
    const cur = (doc.toJS() as { status?: Record<string, unknown> }).status ?? {};
    set('status', { ...cur, ...(o.statusPort !== undefined ? { port: o.statusPort } : {}), ...(o.statusHost ? { host: o.statusHost } : {}) });
  }
  for (const c of o.cameras ?? []) add('cameras', { name: c.name, url: /^[a-z][a-z0-9+.-]*:\/\//i.test(c.url) ? c.url : path.resolve(c.url) });
  if (o.webhook) add('notify', { type: 'webhook', name: 'webhook-cli', url: o.webhook, ...(o.webhookSecret ? { secret: o.webhookSecret } : {}), ...(o.webhookFormat ? { format: o.webhookFormat } : {}) });
  if (o.mqtt) add('notify', { type: 'mqtt', name: 'mqtt-cli', url: o.mqtt });
  if (o.exec) add('notify', { type: 'exec', name: 'exec-cli', command: o.exec });
}

function readInference(m: MapReader, baseDir: string): InferenceConfig {
  const engine = m.opt('engine', (f) => f.choice(ENGINES), 'auto');
  const maxBatch = m.opt('max_batch', (f) => f.number({ min: 1, max: 256, integer: true }), 8);
  const maxDelayMs = m.opt('max_delay', (f) => f.duration(), 5);
  const labels = m.opt('labels', (f) => f.strings(), undefined);
  const modelField = m.get('model');
  const serverField = m.get('server');
  if (serverField.present) {
    const s = serverField.map();
    const url = s.req('url', (f) => {
      const u = f.string();
      if (!/^https?:\/\/[^/]+/.test(u)) f.fail(`${JSON.stringify(u)} is not an http(s) URL of a KServe V2 server (e.g. http://127.0.0.1:5000)`);
      return u.replace(/\/+$/, '');
    });
    const model = s.has('model') ? s.get('model').string() : modelField.present ? modelField.string() : s.get('model').fail('is required: the model name on the server');
    const server = {
      url,
      model,
      ...(s.has('version') ? { version: s.get('version').number({ min: 1, integer: true }) } : {}),
      timeoutMs: s.opt('timeout', (f) => f.duration(), 10_000),
      headers: s.opt('headers', readHeaders, {}),
      maxInFlight: s.opt('max_in_flight', (f) => f.number({ min: 1, max: 256, integer: true }), 8),
      input: s.opt('input', (f) => f.choice(REMOTE_INPUTS), 'auto' as RemoteInput),
      ...(s.has('preprocessing') ? { preprocessing: s.get('preprocessing').choice(PREPROCESSING_MODES) } : {}),
    };
    if (server.input === 'fp32' && !server.preprocessing) s.get('input').fail('fp32 needs server.preprocessing (caffe, tf, torch, unit or raw): the one the model was trained with');
    s.done();
    return { server, ...(labels ? { labels } : {}), engine, maxBatch, maxDelayMs };
  }
  if (!modelField.present) modelField.fail('is required: a model package (path or name) to run locally, or server: {url, model} to use mlctl serve / a KServe V2 server');
  const ref = modelField.string();
  const model = ref.startsWith('.') || ref.startsWith('/') ? path.resolve(baseDir, ref) : ref;
  return { model, ...(labels ? { labels } : {}), engine, maxBatch, maxDelayMs };
}

async function readConfig(root: Field, baseDir: string, source: string): Promise<WatchConfig> {
  const m = root.map();
  const inference = readInference(m, baseDir);
  const fps = m.opt('fps', (f) => f.number({ min: 0, max: 120 }), 1);
  const camerasField = m.get('cameras');
  if (!camerasField.present) camerasField.fail('at least one camera is needed: cameras: [{name, url}] in the file or --camera NAME=URL');
  const cameras = camerasField.list().map((c) => readCamera(c, { fps }, baseDir));
  const names = new Set<string>();
  camerasField.list().forEach((c, i) => {
    if (names.has(cameras[i]!.name)) c.map().get('name').fail(`camera name "${cameras[i]!.name}" is used twice`);
    names.add(cameras[i]!.name);
  });
  const rules = m.opt('rules', readRules, []);
  const rulesFile = m.opt('rules_file', (f) => path.resolve(baseDir, f.string()), undefined);
  if (rulesFile) rules.push(...(await loadRulesFile(rulesFile)));
  const sinks = m.opt('notify', readSinks, []);
  const stateDir = m.opt('state_dir', (f) => path.resolve(baseDir, f.string()), path.resolve(baseDir, 'watch-state'));
  const snapshots = m.opt(
    'snapshots',
    (f) => {
      const s = f.map();
      const out = {
        enabled: s.opt('enabled', (x) => x.boolean(), true),
        drawLabel: s.opt('draw_label', (x) => x.boolean(), true),
        keep: s.opt('keep', (x) => x.number({ min: 0, integer: true }), 1000),
        maxAgeMs: s.opt('max_age', (x) => x.duration(), 7 * 86_400_000),
        quality: s.opt('quality', (x) => x.number({ min: 1, max: 100, integer: true }), 85),
      };
      s.done();
      return out;
    },
    { enabled: true, drawLabel: true, keep: 1000, maxAgeMs: 7 * 86_400_000, quality: 85 },
  );
  const eventsLog = m.opt(
    'events_log',
    (f) => {
      const s = f.map();
      const out = { maxBytes: s.opt('max_size', (x) => x.size(), 10 * 1024 ** 2), keep: s.opt('keep', (x) => x.number({ min: 0, max: 100, integer: true }), 5) };
      s.done();
      return out;
    },
    { maxBytes: 10 * 1024 ** 2, keep: 5 },
  );
  const status = m.opt(
    'status',
    (f) => {
      const s = f.map();
      const port = s.opt('port', (x) => x.number({ min: 0, max: 65535, integer: true }), undefined as number | undefined);
      const out = { ...(port !== undefined ? { port } : {}), host: s.opt('host', (x) => x.string(), '127.0.0.1'), ...(s.has('public_url') ? { publicUrl: s.get('public_url').string().replace(/\/+$/, '') } : {}) };
      s.done();
      return out;
    },
    { host: '127.0.0.1' } as WatchConfig['status'],
  );
  const drainMs = m.opt('drain_timeout', (f) => f.duration(), 10_000);
  m.done();
  for (const s of sinks) {
    if (s.type === 'webhook' && s.snapshot === 'url' && !status.publicUrl && status.port === undefined) {
      throw configError(source, `notifier ${s.name}: snapshot: url needs the status server (status.port) or status.public_url to build snapshot links`);
    }
  }
  return { source, inference, cameras, rules, sinks, stateDir, snapshots, eventsLog, status, drainMs };
}

/** Read and validate the config file (if any) with the flags laid over it. */
export async function loadWatchConfig(file: string | undefined, overrides: WatchOverrides = {}): Promise<WatchConfig> {
  let doc: Document;
  let origin: Origin;
  let baseDir = process.cwd();
  if (file) {
    const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw configError(file, `cannot read the watch config (${err.code ?? err.message}): pass --config FILE with an existing YAML file`);
    });
    ({ doc, origin } = parseYaml(text, displayPath(file)));
    baseDir = path.dirname(path.resolve(file));
  } else {
    doc = new Document({});
    origin = { file: 'command line' };
  }
  applyOverrides(doc, overrides);
  return readConfig(new Field(origin, doc.contents as Node, ''), baseDir, file ?? 'command line');
}
