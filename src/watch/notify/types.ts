// The contract between the delivery loop and each notifier (webhook, MQTT, command hook).
import type { SinkConfig } from '../config/types.js';
import { severityAtLeast, type WatchEvent } from '../events.js';
import type { ObjectCounts } from '../objects.js';

export interface DeliveryContext {
  /** 1 on the first try of this event. */
  attempt: number;
  /** The event's snapshot JPEG, when it has one and it is still on disk. */
  snapshot(): Promise<Buffer | undefined>;
  /** Absolute path of the snapshot (for command hooks). */
  snapshotPath?: string;
  signal: AbortSignal;
}

export interface Sink {
  readonly config: SinkConfig;
  /** Where it delivers, without secrets. */
  readonly describe: string;
  /** Resolves or throws DeliveryError. */
  deliver(event: WatchEvent, ctx: DeliveryContext): Promise<void>;
  /** Connect (MQTT) before deliveries start; never throws for an unreachable peer (deliveries retry). */
  start?(): Promise<void>;
  /** Resolves once the sink can deliver again (MQTT reconnected), so a backlog does not wait out its backoff. */
  whenReady?(signal: AbortSignal): Promise<void>;
  /** Tell the sink a camera went up or down (MQTT keeps availability topics current). */
  cameraState?(camera: string, online: boolean): void;
  /** A detection model's live object counts on a camera after a frame (MQTT keeps retained count topics current). */
  objectCounts?(camera: string, counts: ObjectCounts): void;
  close(): Promise<void>;
}

export class DeliveryError extends Error {
  override readonly name = 'DeliveryError';
  constructor(
    message: string,
    /** Retrying cannot help (e.g. HTTP 400): the event goes to the dead-letter folder. */
    readonly permanent = false,
    /** The receiver asked for this wait (Retry-After). */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

export function wants(config: SinkConfig, event: WatchEvent): boolean {
  return config.types.includes(event.type) && severityAtLeast(event.severity, config.minSeverity);
}
