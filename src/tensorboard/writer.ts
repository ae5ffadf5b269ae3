// TensorBoard event files: one `events.out.tfevents.<secs>.<host>.<pid>.<n>` per run folder, a file_version event
// first, then summaries (scalars, Markdown text, HParams session info). Each flush appends whole TFRecords and
// syncs them to disk, so `tensorboard --logdir` shows a live run and a crash loses at most the unflushed epoch.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MlctlError } from '../errors.js';
import { tfRecord } from './crc32c.js';
import { DATA_CLASS, DT_STRING, Event, HParamsPluginData, SESSION_STATUS } from './schema.js';

let fileCounter = 0;

type SummaryValue = Record<string, unknown>;

export type HParamValue = string | number | boolean;

export class EventFileWriter {
  private pending: Buffer[] = [];
  private constructor(
    readonly file: string,
    private handle: fs.FileHandle,
  ) {}

  /** Create `dir` (and parents) and a new event file in it, starting with the file_version event. */
  static async open(dir: string): Promise<EventFileWriter> {
    await fs.mkdir(dir, { recursive: true }).catch((err: NodeJS.ErrnoException) => {
      throw new MlctlError('OUTPUT_DIR_INVALID', [`cannot create the TensorBoard log folder ${dir}: ${err.code === 'EEXIST' || err.code === 'ENOTDIR' ? 'a file is in the way; pass a folder path' : err.message}`], { cause: err });
    });
    const host = os.hostname().replace(/[^A-Za-z0-9._-]/g, '_') || 'localhost';
    const file = path.join(dir, `events.out.tfevents.${Math.floor(Date.now() / 1000)}.${host}.${process.pid}.${fileCounter++}`);
    const handle = await fs.open(file, 'wx');
    const w = new EventFileWriter(file, handle);
    w.add({ wallTime: Date.now() / 1000, step: 0, fileVersion: 'brain.Event:2' });
    await w.flush();
    return w;
  }

  private add(event: Record<string, unknown>): void {
    this.pending.push(tfRecord(Event.encode(Event.fromObject(event)).finish()));
  }

  private summary(step: number, values: SummaryValue[], wallTime = Date.now() / 1000): void {
    this.add({ wallTime, step, summary: { value: values } });
  }

  /** Scalars at one step (TensorBoard's Scalars dashboard). */
  scalars(step: number, values: Record<string, number | undefined>): void {
    const v = Object.entries(values).filter((e): e is [string, number] => typeof e[1] === 'number' && Number.isFinite(e[1]));
    if (v.length) this.summary(step, v.map(([tag, simpleValue]) => ({ tag, simpleValue })));
  }

  /** A Markdown text summary (TensorBoard's Text dashboard). */
  text(tag: string, markdown: string, step: number): void {
    this.summary(step, [
      {
        tag,
        tensor: { dtype: DT_STRING, tensorShape: {}, stringVal: [Buffer.from(markdown, 'utf8')] },
        metadata: { pluginData: { pluginName: 'text', content: Buffer.alloc(0) }, dataClass: DATA_CLASS.TENSOR },
      },
    ]);
  }

  private hparamsValue(tag: string, data: Record<string, unknown>): void {
    const content = HParamsPluginData.encode(HParamsPluginData.fromObject({ version: 0, ...data })).finish();
    this.summary(0, [{ tag, metadata: { pluginData: { pluginName: 'hparams', content } } }]);
  }

  /** The HParams plugin's session start (this folder is one session; its train/ and validation/ hold the metrics). */
  sessionStart(hparams: Record<string, HParamValue>, o: { groupName: string; modelUri?: string; startTimeSecs?: number }): void {
    const values = Object.fromEntries(
      Object.entries(hparams).map(([k, v]) => [k, typeof v === 'boolean' ? { boolValue: v } : typeof v === 'number' ? { numberValue: v } : { stringValue: v }]),
    );
    this.hparamsValue('_hparams_/session_start_info', { sessionStartInfo: { hparams: values, groupName: o.groupName, modelUri: o.modelUri ?? '', startTimeSecs: o.startTimeSecs ?? Date.now() / 1000 } });
  }

  sessionEnd(status: keyof typeof SESSION_STATUS): void {
    this.hparamsValue('_hparams_/session_end_info', { sessionEndInfo: { status: SESSION_STATUS[status], endTimeSecs: Date.now() / 1000 } });
  }

  /** Append what was added since the last flush and sync it to disk. */
  async flush(): Promise<void> {
    if (!this.pending.length) return;
    const data = Buffer.concat(this.pending);
    this.pending = [];
    await this.handle.write(data);
    await this.handle.datasync();
  }

  async close(): Promise<void> {
    await this.flush();
    await this.handle.close();
  }
}
