// The validated shape of a watch configuration (cameras, inference, rules, notifiers, storage, status port):
// what config/load.ts produces from YAML and flags, and what the rest of src/watch/ consumes.
import type { PreprocessingMode } from '../../data/preprocess.js';
import type { EngineChoice } from '../../runtime/engine.js';

export type Severity = 'info' | 'warning' | 'critical';
export const SEVERITIES: readonly Severity[] = ['info', 'warning', 'critical'];

export type EventType = 'detection' | 'camera_offline' | 'camera_online';
export const EVENT_TYPES: readonly EventType[] = ['detection', 'camera_offline', 'camera_online'];

/** One side of a region of interest: pixels, or a percentage of the frame. */
export interface Extent {
  value: number;
  unit: 'px' | '%';
}

export interface RoiSpec {
  x: Extent;
  y: Extent;
  width: Extent;
  height: Extent;
}

export type SourceSpec =
  | { kind: 'mjpeg'; url: string; headers: Record<string, string> }
  | { kind: 'ffmpeg'; input: string; what: 'rtsp' | 'file' | 'v4l2' | 'stream'; inputOptions: string[]; rtspTransport: 'tcp' | 'udp'; loop: boolean; realtime: boolean }
  | { kind: 'folder'; dir: string; existing: 'skip' | 'process'; pollMs: number };

/** Which detected objects count: their labels, least score and least box area (pixels or % of the frame). */
export interface ObjectFilter {
  labels: string[] | '*';
  minScore: number;
  minArea?: Extent;
}

/** A named zone of a camera: a polygon (3+ points, each coordinate pixels or % of the frame) and what may count in it. */
export interface ZoneConfig {
  name: string;
  points: Array<[Extent, Extent]>;
  filter: ObjectFilter;
  /** Position in the config, for errors found at start (a label the model lacks). */
  at: string;
}

/** The IoU tracker that gives detected objects ids and enter/leave transitions (watch/tracker.ts). */
export interface TrackerConfig {
  /** Least IoU for a detection to continue a track (same label only). */
  iou: number;
  /** Frames a track survives without a matching detection. */
  maxAge: number;
  /** Matched frames before a track is confirmed (gets events and counts). */
  minHits: number;
  /** Detections scoring below this are not tracked (nor counted on MQTT). */
  minScore: number;
}

export interface CameraConfig {
  name: string;
  source: SourceSpec;
  /** Frames per second to classify (0 = every frame the source delivers). */
  fps: number;
  roi?: RoiSpec;
  /** Detection models: named zones of the frame (full-frame pixels, even with an roi). */
  zones: ZoneConfig[];
  tracker: TrackerConfig;
  /** No frame for this long on an open stream: reconnect. */
  stallTimeoutMs: number;
  /** Down for this long (failed or stalled, not yet back): a camera_offline event. */
  offlineAfterMs: number;
  reconnect: { initialMs: number; maxMs: number };
}

export interface ActiveHours {
  /** Minutes after midnight, in `tz`. A window with from > to wraps past midnight. */
  from: number;
  to: number;
  /** 0 = Sunday … 6 = Saturday; empty = every day. */
  days: number[];
  tz: string;
}

/**
 * What a rule looks for in a detection model's objects: `present` (a frame is a hit when at least `count` matching
 * objects are in it — in `zone` when set — and k of the last m frames must be hits), or a tracked object entering or
 * leaving `zone` (or the frame).
 */
export type RuleTrigger = 'present' | 'enter' | 'leave';
export const RULE_TRIGGERS: readonly RuleTrigger[] = ['present', 'enter', 'leave'];

export interface ObjectRule {
  trigger: RuleTrigger;
  zone?: string;
  count: number;
  minArea?: Extent;
}

export interface RuleConfig {
  name: string;
  /** Labels that count as a hit ("*" in the file = every label). */
  labels: string[] | '*';
  minScore: number;
  /** A hit in at least k of the last m frames fires the rule. */
  k: number;
  m: number;
  cooldownMs: number;
  /** Cameras the rule watches (undefined = all). */
  cameras?: string[];
  activeHours?: ActiveHours;
  severity: Severity;
  message: string;
  /** Detection-only keys (zone, count, min_area, trigger); absent for a rule any model can run. */
  objects?: ObjectRule;
  /** Positions of fields checked later against the model and cameras ("rules.yaml:4:13"). */
  at: { labels: string; cameras: string; objects?: string };
}

interface SinkCommon {
  /** Stable name: the spool keeps one delivery cursor per sink name. */
  name: string;
  types: EventType[];
  minSeverity: Severity;
  /** Attempts before an event is moved to the dead-letter folder (0 = retry transient failures forever). */
  maxAttempts: number;
  backoff: { initialMs: number; maxMs: number };
}

export interface WebhookSink extends SinkCommon {
  type: 'webhook';
  url: string;
  /** HMAC-SHA256 secrets; the first signs, each gets a v1= entry (rotation). */
  secrets: string[];
  format: 'json' | 'ntfy' | 'slack';
  snapshot: 'inline' | 'url' | 'none';
  timeoutMs: number;
  headers: Record<string, string>;
}

export interface MqttSink extends SinkCommon {
  type: 'mqtt';
  url: string;
  username?: string;
  password?: string;
  clientId: string;
  topicPrefix: string;
  /** Home Assistant discovery prefix, or undefined for none. */
  discoveryPrefix?: string;
  timeoutMs: number;
}

export interface ExecSink extends SinkCommon {
  type: 'exec';
  /** argv (no shell) or one string run by /bin/sh -c. */
  command: string[] | string;
  timeoutMs: number;
}

export type SinkConfig = WebhookSink | MqttSink | ExecSink;

/**
 * How frames reach a remote model: `bytes` sends the JPEG (BYTES input: mlctl serve, or a server with its own image
 * decoding); `fp32` preprocesses locally and sends the NHWC tensor the model takes (Triton and other V2 servers
 * running a bare ONNX/TF model; needs `preprocessing`); `auto` picks from the server's metadata.
 */
export type RemoteInput = 'auto' | 'bytes' | 'fp32';

export const REMOTE_INPUTS: readonly RemoteInput[] = ['auto', 'bytes', 'fp32'];

export interface RemoteServerConfig {
  url: string;
  model: string;
  version?: number;
  timeoutMs: number;
  headers: Record<string, string>;
  maxInFlight: number;
  input: RemoteInput;
  /** The model's preprocessing, for `fp32` (the server cannot tell it). */
  preprocessing?: PreprocessingMode;
}

export interface InferenceConfig {
  /** Local package reference (path or name[@version]); undefined with a server. */
  model?: string;
  server?: RemoteServerConfig;
  /** Labels for a remote model (KServe V2 metadata has none). */
  labels?: string[];
  engine: EngineChoice;
  maxBatch: number;
  maxDelayMs: number;
}

export interface WatchConfig {
  /** Where the config came from (for messages). */
  source: string;
  inference: InferenceConfig;
  cameras: CameraConfig[];
  rules: RuleConfig[];
  sinks: SinkConfig[];
  stateDir: string;
  snapshots: { enabled: boolean; drawLabel: boolean; keep: number; maxAgeMs: number; quality: number };
  eventsLog: { maxBytes: number; keep: number };
  status: { port?: number; host: string; publicUrl?: string };
  /** Longest wait on shutdown for deliveries still in flight. */
  drainMs: number;
}
