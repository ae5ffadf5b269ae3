// Notifiers from their configs.
import type { Logger } from '../../util/log.js';
import type { SinkConfig } from '../config/types.js';
import { execSink } from './exec.js';
import { mqttSink } from './mqtt.js';
import type { Sink } from './types.js';
import { webhookSink } from './webhook.js';

export interface SinkContext {
  cameras: string[];
  rulesFor(camera: string): string[];
  version: string;
  logger: Logger;
}

export function createSinks(configs: SinkConfig[], ctx: SinkContext): Sink[] {
  return configs.map((c) => (c.type === 'webhook' ? webhookSink(c) : c.type === 'mqtt' ? mqttSink(c, ctx) : execSink(c)));
}
