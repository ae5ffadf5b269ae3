// TensorBoard event files read back by an independent reader (test/helpers/tfevents-reader.py: a bitwise CRC-32C
// against the writer's table-driven one, Google's protobuf runtime with the owners' field numbers): the framing, the
// writer's summaries, and `train --tensorboard` live (each epoch on disk when it ends) through both phases.
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../src/runtime/backend.js';
import { crc32c, maskedCrc32c, tfRecord } from '../src/tensorboard/crc32c.js';
import { EventFileWriter } from '../src/tensorboard/writer.js';
import type { EpochMetrics } from '../src/heads/head.js';
import { runTrain, type TrainOptions } from '../src/train/run.js';
import { sessionGroupName, trainHparams } from '../src/train/tensorboard.js';
import { createMemoryLogger } from '../src/util/log.js';
import { runCli } from './helpers/cli.js';
import { synthDataset, tempDir } from './helpers/fixtures.js';
import { PYTHON, tools } from './helpers/tools.js';

const READER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'helpers', 'tfevents-reader.py');

interface ReadValue { tag: string; simple_value?: number; plugin?: string; text?: string[]; dtype?: number; session_start_info?: { hparams: Record<string, unknown>; group_name: string }; session_end_info?: { status: number } }
interface ReadEvent { wall_time: number; step: number; file_version?: string; values?: ReadValue[] }

function readEvents(dir: string): Record<string, ReadEvent[]> {
  const r = spawnSync(PYTHON, [READER, dir], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`reader failed: ${r.stderr || r.stdout}`);
  return JSON.parse(r.stdout);
}

/** Every scalar of one run folder (relative path prefix, e.g. "train/") as tag → [[step, value]]. */
function scalars(files: Record<string, ReadEvent[]>, run: string): Record<string, Array<[number, number]>> {
  const out: Record<string, Array<[number, number]>> = {};
  for (const [f, events] of Object.entries(files)) {
    if (path.dirname(f) !== run) continue;
    for (const e of events) for (const v of e.values ?? []) if (v.simple_value !== undefined) (out[v.tag] ??= []).push([e.step, v.simple_value]);
  }
  return out;
}

const f32 = (x: number) => Math.fround(x);

let tmp: { dir: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  tmp = await tempDir('mlctl-tb-');
  await synthDataset(path.join(tmp.dir, 'data'), { classes: 2, perClass: 8, size: 32, seed: 4 });
});
afterAll(async () => {
  await tmp.cleanup();
});

describe('TFRecord framing', () => {
  it('computes CRC-32C and the masked form as the spec gives them', () => {
    // RFC 3720 B.4 check values: 32 zero bytes and "123456789".
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    const c = 0xe3069283;
    expect(maskedCrc32c(Buffer.from('123456789'))).toBe(((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0);
    const rec = tfRecord(Buffer.from('abc'));
    expect(rec.readBigUInt64LE(0)).toBe(3n);
    expect(rec.subarray(12, 15).toString()).toBe('abc');
    expect(rec.length).toBe(19);
  });
});

describe.skipIf(!tools.pythonProtobuf)('event files read back independently', () => {
  it('writes file_version first, then scalars, text and HParams session info', async () => {
    const dir = path.join(tmp.dir, 'unit');
    const w = await EventFileWriter.open(dir);
    w.scalars(1, { epoch_loss: 0.75, epoch_accuracy: 0.5, skipped: undefined, nan: NaN });
    w.text('notes', '| a | b |\n| --- | --- |\n| 1 | 2 |', 1);
    w.sessionStart({ lr: 0.001, head: 'gap', augment: false }, { groupName: 'g1' });
    w.sessionEnd('SUCCESS');
    await w.close();
    const files = readEvents(dir);
    const [name] = Object.keys(files);
    expect(name).toMatch(/^events\.out\.tfevents\.\d{10}\.[^.]+/);
    const events = files[name!]!;
    expect(events[0]).toMatchObject({ step: 0, file_version: 'brain.Event:2' });
    expect(Math.abs(events[0]!.wall_time - Date.now() / 1000)).toBeLessThan(120);
    expect(events[1]!.step).toBe(1);
    expect(events[1]!.values).toEqual([{ tag: 'epoch_loss', simple_value: 0.75 }, { tag: 'epoch_accuracy', simple_value: 0.5 }]);
    expect(events[2]!.values![0]).toMatchObject({ tag: 'notes', plugin: 'text', dtype: 7, text: ['| a | b |\n| --- | --- |\n| 1 | 2 |'] });
    expect(events[3]!.values![0]).toMatchObject({ tag: '_hparams_/session_start_info', plugin: 'hparams', session_start_info: { hparams: { lr: 0.001, head: 'gap', augment: false }, group_name: 'g1' } });
    expect(events[4]!.values![0]).toMatchObject({ tag: '_hparams_/session_end_info', plugin: 'hparams', session_end_info: { status: 1 } });
  });

  it('the reader rejects a corrupted record (its CRC check is live)', async () => {
    const dir = path.join(tmp.dir, 'corrupt');
    const w = await EventFileWriter.open(dir);
    w.scalars(1, { x: 1 });
    await w.close();
    const [name] = await fs.readdir(dir);
    const file = path.join(dir, name!);
    const bytes = await fs.readFile(file);
    bytes[bytes.length - 6] ^= 0x01; // inside the last record's data
    await fs.writeFile(file, bytes);
    expect(() => readEvents(dir)).toThrow(/bad data CRC/);
  });

  it('train --tensorboard: both phases, train and validation runs, hparams — each epoch on disk as it ends', async () => {
    await selectBackend('wasm');
    const data = path.join(tmp.dir, 'data');
    const board = path.join(tmp.dir, 'board');
    const live: Array<{ step: number; seen: number[] }> = [];
    const opts: TrainOptions = {
      data, name: 'tb', epochs: 2, batchSize: 8, imageSize: 32, lr: 0.002, head: 'gap', dropout: 0, fineTune: 1, fineTuneEpochs: 2, lrSchedule: 'constant', weights: 'none', augment: [], seed: 3,
      resume: false, validationSplit: 0.25, testSplit: 0, engine: 'tfjs', classWeights: 'auto', logger: createMemoryLogger(), artifacts: path.join(tmp.dir, 'artifacts'),
      cache: path.join(tmp.dir, 'cache'), tensorboard: board,
      // What is on disk when each epoch has ended: the caller's hook runs after the board's.
      onEpoch: (_m: EpochMetrics, step: number) => {
        live.push({ step, seen: (scalars(readEvents(board), 'train').epoch_loss ?? []).map(([s]) => s) });
      },
    };
    const r = await runTrain(opts);
    expect(r.history.map((h) => h.phase)).toEqual(['head', 'head', 'fine-tune', 'fine-tune']);
    expect(live).toEqual([1, 2, 3, 4].map((step) => ({ step, seen: Array.from({ length: step }, (_, i) => i + 1) })));

    const files = readEvents(board);
    const train = scalars(files, 'train');
    const val = scalars(files, 'validation');
    expect(train.epoch_loss).toEqual(r.history.map((h, i) => [i + 1, f32(h.loss)]));
    expect(train.epoch_accuracy).toEqual(r.history.map((h, i) => [i + 1, f32(h.accuracy)]));
    expect(train.epoch_learning_rate).toEqual(r.history.map((h, i) => [i + 1, f32(h.lr)]));
    // Constant in both phases (the fine-tune phase's short warm-up is over by the end of its first epoch).
    expect(train.epoch_learning_rate!.map(([, v]) => v)).toEqual([0.002, 0.002, 0.0002, 0.0002].map(f32));
    expect(val.epoch_loss).toEqual(r.history.map((h, i) => [i + 1, f32(h.valLoss!)]));
    expect(val.epoch_accuracy).toEqual(r.history.map((h, i) => [i + 1, f32(h.valAccuracy!)]));

    const rootValues = Object.entries(files).filter(([f]) => path.dirname(f) === '.').flatMap(([, ev]) => ev.flatMap((e) => (e.values ?? []).map((v) => ({ step: e.step, ...v }))));
    const start = rootValues.find((v) => v.tag === '_hparams_/session_start_info')!;
    const hp = trainHparams(opts);
    expect(start.session_start_info!.hparams).toEqual(hp);
    expect(start.session_start_info!.group_name).toBe(sessionGroupName(hp));
    expect(rootValues.find((v) => v.tag === '_hparams_/session_end_info')!.session_end_info!.status).toBe(1);
    expect(rootValues.find((v) => v.tag === 'hyperparameters')!.text![0]).toContain('| lr | 0.002 |');
    expect(rootValues.find((v) => v.tag === 'phase')).toMatchObject({ step: 3, text: [expect.stringContaining('fine-tune phase starts at epoch 3')] });
    expect(rootValues.find((v) => v.tag === 'package')!.text![0]).toContain(r.package!.dir);
  }, 240_000);

  it('rejects a --tensorboard path that is a file, before training, with a stable code', async () => {
    const file = path.join(tmp.dir, 'not-a-dir');
    await fs.writeFile(file, 'x');
    const { code, json: doc } = await runCli(['train', '--data', path.join(tmp.dir, 'data'), '--name', 'tbbad', '--weights', 'none', '--image-size', '32', '--epochs', '1', '--tensorboard', file, '--json', '--quiet', '--backend', 'wasm']);
    expect(code).toBe(1);
    expect(doc.error.code).toBe('OUTPUT_DIR_INVALID');
    expect(doc.error.message).toMatch(/TensorBoard log folder .* a file is in the way/);
  });
});
