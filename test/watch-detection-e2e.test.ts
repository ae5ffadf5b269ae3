// watch end to end with a detection model: real frames (PNG files dropped in a watched folder), a real ONNX detector
// in onnxruntime through the detection task, zones, the tracker, count and enter/leave rules, snapshots, and MQTT
// per-label count topics on a real mosquitto broker. The detector is a hand-built CenterNet that truly looks at the
// picture: one 16x16-stride conv scores "person" = mean(R − G) and "car" = mean(B − G) per cell, with a fixed size of
// 2x2 cells — so a red 32-pixel square on a black 128x128 frame is a person whose box is known exactly.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import sharp from 'sharp';
import type { DetectionSection } from '../src/artifacts/manifest.js';
import { savePackage } from '../src/artifacts/package.js';
import { imageInputSpec } from '../src/data/preprocess.js';
import { DataType, encodeModel, graphBuilder, irVersionForOpset, valueInfo } from '../src/onnx/index.js';
import { createMemoryLogger } from '../src/util/log.js';
import { loadWatchConfig } from '../src/watch/config/load.js';
import type { WatchEvent } from '../src/watch/events.js';
import { openLocalClassifier } from '../src/watch/classify.js';
import { startWatch } from '../src/watch/watcher.js';
import { tempDir } from './helpers/fixtures.js';
import { tools } from './helpers/tools.js';
import { startMosquitto, until } from './helpers/watch.js';

const SIZE = 64;
const GRID = 4;
const LABELS = ['person', 'car'];
const C = LABELS.length + 4;

/** NHWC [n, 64, 64, 3] in 0..1 → [n, 4, 4, 6]: per cell person, car heat, then size (2, 2) and offset (0.5, 0.5) in cells. */
function squareDetector(): Uint8Array {
  const k = 16 * 16;
  const w = new Float32Array(C * 3 * k);
  const put = (out: number, ch: number, v: number) => w.fill(v, (out * 3 + ch) * k, (out * 3 + ch + 1) * k);
  put(0, 0, 1 / k); // person: + R
  put(0, 1, -1 / k); //          − G
  put(1, 2, 1 / k); // car: + B
  put(1, 1, -1 / k); //       − G
  const g = graphBuilder(['input', 'detections']);
  const nchw = g.node('Transpose', ['input'], [g.unique('nchw')], { perm: [0, 3, 1, 2] });
  const conv = g.node('Conv', [nchw, g.floatConst('w', [C, 3, 16, 16], w), g.floatConst('b', [C], [0, 0, 2, 2, 0.5, 0.5])], [g.unique('conv')], { kernel_shape: [16, 16], strides: [16, 16] });
  g.node('Transpose', [conv], ['detections'], { perm: [0, 2, 3, 1] });
  const graph = {
    name: 'square_detector',
    node: g.nodes,
    initializer: g.initializers,
    input: [valueInfo('input', DataType.FLOAT, ['batch', SIZE, SIZE, 3])],
    output: [valueInfo('detections', DataType.FLOAT, ['batch', GRID, GRID, C])],
  };
  return encodeModel({ irVersion: irVersionForOpset(13), opsetImport: [{ domain: '', version: 13 }], producerName: 'mlctl-test', graph });
}

/** A black size x size frame (128 by default) with 32-pixel squares on a 32-pixel grid: [cell x, cell y, colour]. */
async function frame(squares: Array<[number, number, string]>, size = 128): Promise<Buffer> {
  const composite = await Promise.all(
    squares.map(async ([x, y, colour]) => ({ input: await sharp({ create: { width: 32, height: 32, channels: 3, background: colour } }).png().toBuffer(), left: x * 32, top: y * 32 })),
  );
  return sharp({ create: { width: size, height: size, channels: 3, background: '#000' } }).composite(composite).png().toBuffer();
}

let tmp: { dir: string; cleanup: () => Promise<void> };
let model: string;

beforeAll(async () => {
  tmp = await tempDir('mlctl-watch-det-e2e-');
  const input = imageInputSpec(SIZE, 'unit');
  input.preprocessing = { ...input.preprocessing, resize: 'fill' };
  const detection: DetectionSection = { head: 'centernet', classes: LABELS.length, grid: [GRID, GRID], stride: 16, maxDetections: 10, categoryIds: [1, 2], resize: 'fill' };
  const pkg = await savePackage({
    root: path.join(tmp.dir, 'models'),
    name: 'squares',
    draft: {
      task: 'detection',
      labels: LABELS,
      input,
      output: { name: 'detections', kind: 'detection', size: GRID * GRID * C },
      detection,
      architecture: { type: 'test-square-detector' },
      formats: { onnx: 'model.onnx' },
      lineage: [],
    },
    write: async (dir) => fs.writeFile(path.join(dir, 'model.onnx'), squareDetector()),
  });
  model = pkg.dir;
});
afterAll(() => tmp?.cleanup());

describe('detection frames through the task layer', () => {
  it('maps boxes found in a region of interest back to the whole frame', async () => {
    const c = await openLocalClassifier({ model, engine: 'onnx', maxBatch: 1, maxDelayMs: 0, logger: createMemoryLogger(), minScore: 0.5 });
    try {
      expect(c.detects).toBe(true);
      const image = await frame([[3, 3, '#f00'], [0, 0, '#00f']]);
      // Whole frame (fill 128 → 64): the person in cell (3, 3) → input box (40, 40) to (72, 72) clipped at 64 → ×2.
      const whole = await c.classify(image);
      expect(whole.frame).toEqual({ width: 128, height: 128 });
      expect(whole.objects!.map((o) => [o.label, o.box])).toEqual(expect.arrayContaining([['person', { x: 80, y: 80, width: 48, height: 48 }], ['car', { x: 0, y: 0, width: 48, height: 48 }]]));
      // A 256x256 frame, its lower-right quarter as the region (128 → 64): the person in cell (7, 7) is at region
      // (96, 96) → input cell (3, 3), box (40, 40) clipped at 64 → region (80, 80, 48, 48) → frame + (128, 128).
      // The car in cell (0, 0) is outside the region: not seen at all.
      const big = await frame([[7, 7, '#f00'], [0, 0, '#00f']], 256);
      const part = await c.classify(big, { left: 128, top: 128, width: 128, height: 128 });
      expect(part.frame).toEqual({ width: 256, height: 256 });
      expect(part.objects!.map((o) => [o.label, o.box])).toEqual([['person', { x: 208, y: 208, width: 48, height: 48 }]]);
      expect(part.objects![0]!.score).toBeGreaterThan(0.9);
    } finally {
      await c.close();
    }
  });
});

describe.skipIf(!tools.mosquitto)('watch with a detection model (mosquitto)', () => {
  it('tracks a person into the door zone and out of view, counts a crowd, and keeps MQTT counts per label and zone', async () => {
    const broker = await startMosquitto(tmp.dir);
    const drop = path.join(tmp.dir, 'drop');
    await fs.mkdir(drop);
    // A person walks right along row 1 (cells 0 → 3), is gone for a frame, then two people stand in the door and a car on the left.
    const frames = [
      [[0, 1, '#f00']],
      [[1, 1, '#f00']],
      [[2, 1, '#f00']],
      [[3, 1, '#f00']],
      [],
      [[2, 0, '#f00'], [3, 3, '#f00'], [0, 3, '#00f']],
    ] as Array<Array<[number, number, string]>>;
    for (const [i, f] of frames.entries()) {
      const file = path.join(drop, `f${i}.png`);
      await fs.writeFile(file, await frame(f));
      await fs.utimes(file, 1_700_000_000 + i, 1_700_000_000 + i); // the folder source goes by mtime, then name
    }
    const config = path.join(tmp.dir, 'watch.yaml');
    await fs.writeFile(
      config,
      `model: ${model}
engine: onnx
state_dir: ${path.join(tmp.dir, 'state')}
cameras:
  - name: front
    path: ${drop}
    existing: process
    poll_interval: 100ms
    zones:
      door: [[50%, 0], [100%, 0], [100%, 100%], [50%, 100%]]
    tracker: {iou: 0.3, max_age: 0, min_hits: 1}
rules:
  - {name: at-door, label: person, trigger: enter, zone: door, message: "#{object_id} {label} at the {zone}"}
  - {name: gone, label: person, trigger: leave}
  - {name: crowd, label: person, zone: door, count: 2, message: "{count} people at the {zone}"}
notify:
  - {type: mqtt, url: "${broker.url}", topic_prefix: cams, client_id: det-watcher}
`,
    );
    const events: WatchEvent[] = [];
    const w = await startWatch({ config: await loadWatchConfig(config), logger: createMemoryLogger(), version: '0.0.0-test', onEvent: (e) => events.push(e) });
    let sub: mqtt.MqttClient | undefined;
    try {
      await until(() => events.some((e) => e.rule === 'crowd'), 'the crowd event', 20_000);
      // The last frame's three objects start tracks #2–#4 (numbered in decoding's score order); both people are new in
      // the door, so they enter it too, then the crowd rule counts them.
      expect(events.map((e) => e.rule)).toEqual(['at-door', 'gone', 'at-door', 'at-door', 'crowd']);
      const [atDoor, gone, crowd] = [events[0]!, events[1]!, events[4]!];
      expect(atDoor.message).toBe('#1 person at the door');
      expect(gone.message).toMatch(/^person on front \(9\d%|100%\)$/);
      expect(crowd.message).toBe('2 people at the door');
      // Cell (2, 1): input box x = 16·2 − 8 = 24, width 32 → frame pixels ×2 = 48, 64; y = 16·1 − 8 = 8 → 16, height 64.
      expect(atDoor).toMatchObject({ type: 'detection', trigger: 'enter', zone: 'door', frame: { file: 'f2.png' } });
      expect(atDoor.objects).toMatchObject([{ id: 1, label: 'person', box: { x: 48, y: 16, width: 64, height: 64 }, zones: ['door'] }]);
      expect(atDoor.objects![0]!.score).toBeGreaterThan(0.9); // a whole cell of red, give or take the resize's blending
      // Left on the empty frame: its last box, cell (3, 1) = x 80 to 144 clipped to the 128-pixel frame.
      expect(gone).toMatchObject({ trigger: 'leave', frame: { file: 'f4.png' }, objects: [{ id: 1, label: 'person', box: { x: 80, y: 16, width: 48, height: 64 }, zones: ['door'] }] });
      expect(crowd).toMatchObject({ trigger: 'present', zone: 'door', hits: { count: 1, window: 1 }, frame: { file: 'f5.png' } });
      const boxes = crowd.objects!.map((o) => [o.label, o.box]).sort((p, q) => (p[1] as { y: number }).y - (q[1] as { y: number }).y);
      expect(boxes).toEqual([
        ['person', { x: 48, y: 0, width: 64, height: 48 }],
        ['person', { x: 80, y: 80, width: 48, height: 48 }],
      ]);
      const entered = [events[2]!, events[3]!].map((e) => e.objects![0]!.id!).sort();
      expect(crowd.objects!.map((o) => o.id!).sort()).toEqual(entered);
      expect(entered.every((id) => id >= 2 && id <= 4)).toBe(true);
      expect(crowd.top!.map((t) => t.label).sort()).toEqual(['car', 'person']);
      // The crowd's snapshot: the frame with its two boxes drawn (box colour on the frame's black at box 2's left edge).
      const snap = await sharp(path.join(tmp.dir, 'state', 'snapshots', crowd.snapshot!.file)).raw().toBuffer({ resolveWithObject: true });
      expect([snap.info.width, snap.info.height]).toEqual([128, 128]);
      const px = (x: number, y: number) => Array.from(snap.data.subarray((y * 128 + x) * 3, (y * 128 + x) * 3 + 3));
      const [r, g] = px(48, 40);
      expect(r! - g!).toBeGreaterThan(60); // box #2's left edge at x = 48, drawn over black (JPEG blurs its colour)
      expect(Math.max(...px(20, 40))).toBeLessThan(40); // black where nothing is drawn

      // MQTT: retained counts per label and per zone, as of the last frame (read by a client that connects afterwards).
      sub = await mqtt.connectAsync(broker.url, { clientId: `det-sub-${process.pid}` });
      const retained = new Map<string, string>();
      sub.on('message', (topic, payload) => retained.set(topic, payload.toString()));
      const want = { 'cams/front/person': '2', 'cams/front/car': '1', 'cams/front/door/person': '2', 'cams/front/door/car': '0' };
      await sub.subscribeAsync(Object.keys(want), { qos: 1 });
      await until(() => Object.entries(want).every(([t, v]) => retained.get(t) === v), `retained counts ${JSON.stringify(want)}`, 5000).catch(() => {});
      expect(Object.fromEntries(Object.keys(want).map((t) => [t, retained.get(t)]))).toEqual(want);
    } finally {
      await sub?.endAsync().catch(() => {});
      await w.stop();
      await broker.stop();
    }
  }, 40_000);
});
