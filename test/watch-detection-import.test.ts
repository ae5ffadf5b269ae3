// watch with detectors people bring: torchvision's SSDLite320 (three outputs boxes/scores/labels, no batch dimension)
// and a YOLOv8-layout head, imported with `mlctl import --task detection`, watching a real folder of frames. The
// weights are random, so no label means anything: a rule that fires on every frame (any label, min_score 0, count 1,
// no cooldown) checks that each frame ran through the detector and that what the event carries — best object, its
// score, its box in frame pixels, the number of objects — is what onnxruntime's own answer for that frame decodes to.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPackage } from '../src/artifacts/package.js';
import { createMemoryLogger } from '../src/util/log.js';
import { loadWatchConfig } from '../src/watch/config/load.js';
import type { WatchEvent } from '../src/watch/events.js';
import { startWatch } from '../src/watch/watcher.js';
import { runCli } from './helpers/cli.js';
import { noisePictures } from './helpers/detection-fixtures.js';
import { mlctlHome, type MlctlHome } from './helpers/fixtures.js';
import { onnxRuntimeDetections } from './helpers/imported-detectors.js';
import { pythonFixture } from './helpers/python-fixtures.js';
import { tools } from './helpers/tools.js';
import { until } from './helpers/watch.js';

describe.skipIf(!tools.pythonTorch)('watch with imported detectors (folder of frames)', () => {
  let home: MlctlHome;
  let frames: string[];

  beforeAll(async () => {
    home = await mlctlHome('mlctl-watch-import-det-');
    frames = await noisePictures(path.join(home.dir, 'frames'), 3, 160, 120, 11);
  }, 600_000);

  afterAll(async () => {
    await home?.cleanup();
  });

  async function watchFrames(name: string, onnx: string): Promise<void> {
    const drop = path.join(home.dir, `drop-${name}`);
    await fs.mkdir(drop);
    for (const [i, f] of frames.entries()) {
      const file = path.join(drop, `f${i}.png`);
      await fs.copyFile(f, file);
      await fs.utimes(file, 1_700_000_000 + i, 1_700_000_000 + i); // the folder source goes by mtime, then name
    }
    const config = path.join(home.dir, `${name}.yaml`);
    await fs.writeFile(
      config,
      `model: ${(await loadPackage(name)).dir}
engine: onnx
state_dir: ${path.join(home.dir, `state-${name}`)}
cameras:
  - {name: yard, path: ${drop}, existing: process, poll_interval: 100ms}
rules:
  - {name: anything, label: "*", min_score: 0, count: 1, cooldown: 0s}
`,
    );
    const events: WatchEvent[] = [];
    const w = await startWatch({ config: await loadWatchConfig(config), logger: createMemoryLogger(), version: '0.0.0-test', onEvent: (e) => events.push(e) });
    try {
      await until(() => events.length >= frames.length, `${frames.length} detection events`, 30_000);
    } finally {
      await w.stop();
    }
    expect(events.map((e) => [e.type, e.rule, e.frame?.file])).toEqual(frames.map((_, i) => ['detection', 'anything', `f${i}.png`]));
    const maxDetections = (await loadPackage(name)).manifest.detection!.maxDetections;
    for (const [i, e] of events.entries()) {
      const want = await onnxRuntimeDetections(name, onnx, { minScore: 0, maxDetections }, frames[i]!);
      expect(want.length, `frame ${i}`).toBeGreaterThan(0);
      const objects = [...e.objects!].sort((a, b) => b.score - a.score);
      expect(objects).toHaveLength(want.length);
      expect(objects[0]!.label).toBe(want[0]!.label);
      expect(objects[0]!.score).toBeCloseTo(want[0]!.score, 3);
      for (const k of ['x', 'y', 'width', 'height'] as const) expect(Math.abs(objects[0]!.box[k] - want[0]!.box[k])).toBeLessThanOrEqual(0.051);
    }
  }

  it("torchvision's SSDLite320 (boxes, scores, labels; no batch dimension): every frame's objects, as onnxruntime finds them", async () => {
    const onnx = path.join(pythonFixture('import_ssdlite.py', 400_000), 'ssdlite.onnx');
    const r = await runCli(['import', onnx, '--name', 'ssd', '--task', 'detection', '--layout', 'torchvision', '--labels', 'a,b,c', '--preprocessing', 'unit', '--json']);
    expect(r.code, JSON.stringify(r.json)).toBe(0);
    await watchFrames('ssd', onnx);
  }, 120_000);

  it('a YOLOv8-layout head (NCHW, fixed batch 1): the same', async () => {
    const onnx = path.join(pythonFixture('import_torch.py'), 'yolov8.onnx');
    const r = await runCli(['import', onnx, '--name', 'yolo8', '--task', 'detection', '--layout', 'yolo', '--labels', 'cat,dog', '--preprocessing', 'unit', '--json']);
    expect(r.code, JSON.stringify(r.json)).toBe(0);
    await watchFrames('yolo8', onnx);
  }, 120_000);
});
