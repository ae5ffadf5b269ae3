// `npm run bench -- detection`: object detection figures beside their targets (issue 26). Parts, chosen with --only:
//   train — `mlctl train --task detection` (train/detection/run.ts, as the CLI runs it) on the synthetic set
//   (`mlctl datasets synth --task detection`): mAP50 after training on the held-out pictures the int8 part scores
//   (--heldout; the validation split's figure beside it), and the head phase's seconds per epoch per
//   1,000 training pictures once their feature maps are stored (a second run of the same command reads them all from
//   the store; its epochs include scoring the validation split, as every epoch does).
//   int8 — `mlctl quantize --dtype int8 --data` (optimize/quantize-int8.ts) on the package the train part made (or
//   --package DIR --data DIR), once per calibration sample (--seed S draws another one), then `mlctl evaluate`'s path
//   (evaluate/detection.ts → tasks/detection/evaluate.ts) on held-out synthetic pictures for fp32 and each int8 model:
//   mAP50 of each, each drop in points, their mean and spread; target: the mean drop ≤ 1. The validation split alone
//   (60 pictures, 102 boxes: one box ~1 point) made one calibration sample's drop a coin flip (−1.8 … +1.4 points).
//   serve — `mlctl serve` (the real CLI, one child process per model) of a MobileNetV2 CenterNet detector at 320 px
//   (random weights, made by the train machinery at 1 epoch) and the MobileNetV2 classifier at 320 px, img/s of
//   /predict at c=8 on a 1024x768 JPEG, in interleaved rounds (serve-profile.ts's load generator); target: the
//   detector ≥ 50% of the classifier's img/s.
//   watch — the serve part's detector made int8 by `mlctl quantize --dtype int8`, watching N MJPEG cameras at 1 fps
//   (bench/watch.ts's sustain and latency steps, cameras in their own process, bench/_cameras.ts): whether it keeps up
//   with 15 (every frame classified, p95 camera → result < 1 s) and the alert latency p95 (camera → webhook).
// Every figure is printed with the load average: the machine is shared, figures under load are noisy.
// Options: --only train,int8,serve --images 600 --size 128 --image-size 128 --epochs 25 --backbone vgg16 --alpha
//   (mobilenet_v2) --weights none|imagenet|PATH --upsample 1 --head-channels 64 --lr 0.003 --batch 16 --seed 1
//   int8: --package DIR --data DIR --calibration 100 --calibration-samples 3 --heldout 600 (0: the validation split)
//   serve: --serve-size 320 --clients 8 --duration 4 --rounds 3
//   watch: --cameras 15 --seconds 10 --latency-frames 10
// The default backbone is VGG16 with random weights: ImageNet weights cannot be downloaded on every machine, and a
// randomly initialised MobileNetV2 (BatchNorm at its initial statistics, ReLU6) gives feature maps with almost no
// spatial information left (measured: train-set AP50 0.01 after 40 head epochs, against VGG16's val AP50 0.20 after
// 25). With --weights imagenet the issue's MobileNetV2 case runs as it would for a user.
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { loadPackage, type LoadedPackage } from '../src/artifacts/package.js';
import { resolveSplitParams } from '../src/data/splits.js';
import { evaluateDetectionPackage, loadDetectionEvaluationData, mapDetectionLabels } from '../src/evaluate/detection.js';
import type { DetectionEvaluationData } from '../src/data/detection/evaluation.js';
import { quantizeInt8Package } from '../src/optimize/quantize-int8.js';
import { generateDetectionDataset } from '../src/data/detection/synth.js';
import { selectBackend } from '../src/runtime/backend.js';
import { runDetectionTrain } from '../src/train/detection/run.js';
import type { DetectionTrainOptions, DetectionTrainResult } from '../src/train/detection/types.js';
import { createLogger } from '../src/util/log.js';
import { deriveSeed } from '../src/util/random.js';
import { tempDir } from '../test/helpers/fixtures.js';
import { arg, requestJpeg, writeBenchResult } from './_util.js';
import { benchPackage } from './_vgg16.js';
import { closedLoop, pct, startServe } from './serve-profile.js';
import { latency, sustain } from './watch.js';

/**
 * Targets of the train part. mAP50: the synthetic shapes are easy (solid colours, tight boxes), so a CenterNet head
 * that works finds most of them at IoU 0.5 even on a randomly initialised backbone. Seconds per epoch per 1,000
 * pictures from stored feature maps: the classifier's head-phase target is 2.5 s; the CenterNet head's 3x3 convs on a
 * 4x upsampled grid cost more per picture, budgeted at 4x.
 */
export const TRAIN_TARGETS = { mAP50: 0.5, perEpochPer1000: 10 } as const;
/** Issue 26: int8 costs at most one mAP50 point; a detector serves at least half the classifier's img/s (same backbone and size). */
export const INT8_TARGETS = { maxDropPoints: 1 } as const;
export const SERVE_TARGETS = { share: 0.5 } as const;
/** Issue 26 (c): an int8 detector keeps up with ≥ 15 cameras at 1 fps (watch.ts's criterion); alert p95 as issue 16's (< 1 s). */
export const WATCH_TARGETS = { cameras: 15, p95Ms: 1000 } as const;

const load = () => os.loadavg().map((l) => l.toFixed(2)).join(' ');
const verdict = (ok: boolean) => (ok ? 'MET' : 'NOT MET');

/** Scratch space shared by the parts of one run (the train part's package feeds int8), removed when the run ends. */
let scratch: { dir: string; cleanup: () => Promise<void> } | undefined;
const scratchDir = async () => (scratch ??= await tempDir('mlctl-bench-detection-')).dir;
/** The package and data the train part made in this run. */
let trained: { pkg: string; data: string } | undefined;

const f = (v: number | null | undefined, d = 3) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(d) : 'n/a');
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2) : NaN;
};

async function trainPart(args: string[]) {
  const images = Number(arg(args, '--images', '600'));
  const size = Number(arg(args, '--size', '128'));
  const imageSize = Number(arg(args, '--image-size', String(size)));
  const epochs = Number(arg(args, '--epochs', '25'));
  const backbone = arg(args, '--backbone', 'vgg16');
  const alphaArg = arg(args, '--alpha', backbone === 'mobilenet_v2' ? '1.0' : '');
  const weights = arg(args, '--weights', 'none');
  const seed = Number(arg(args, '--seed', '1'));
  const dir = await scratchDir();
  {
    await selectBackend('wasm');
    const data = path.join(dir, 'objects');
    const synth = await generateDetectionDataset({ out: data, images, size, classes: 3, seed });
    const opts: DetectionTrainOptions = {
      data,
      name: 'bench-detection',
      skipInvalid: false,
      epochs,
      batchSize: Number(arg(args, '--batch', '16')),
      imageSize,
      backbone,
      ...(alphaArg ? { alpha: Number(alphaArg) } : {}),
      lr: Number(arg(args, '--lr', '0.003')),
      headChannels: Number(arg(args, '--head-channels', '64')),
      upsample: Number(arg(args, '--upsample', '1')),
      maxDetections: 100,
      fineTune: 0,
      weights,
      augment: [],
      seed,
      resume: false,
      validationSplit: 0.2,
      testSplit: 0,
      engine: 'auto',
      featureCache: true,
      artifacts: path.join(dir, 'artifacts'),
      cache: path.join(dir, 'cache'),
      logger: createLogger({ level: 'warn' }),
    };
    console.log(`detection train: ${synth.images} synthetic pictures (${synth.boxes} boxes, ${synth.classes.length} classes) at ${size} px; ${backbone}${alphaArg ? ` alpha ${alphaArg}` : ''} at ${imageSize} px, weights ${weights}; ${epochs} epochs`);
    // Run 1 (one epoch) computes and stores the feature maps; run 2 (a new name, the same data) reads them all from the store.
    const fill = await runDetectionTrain({ ...opts, epochs: 1 });
    const run: DetectionTrainResult = await runDetectionTrain({ ...opts, name: 'bench-detection-2' });
    const train = run.features.train!;
    const trainPictures = train.images;
    const perEpoch = run.history.filter((h) => h.phase === 'head').map((h) => (h.seconds * 1000) / trainPictures);
    const v = run.metrics.validation as Record<string, number | null>;
    const result = {
      images,
      size,
      imageSize,
      backbone,
      alpha: alphaArg ? Number(alphaArg) : null,
      weights,
      epochs: run.history.length,
      trainPictures,
      valPictures: run.features.val?.images ?? 0,
      featuresFromStore: { cached: train.cached, computed: train.computed },
      firstRunFeatureSeconds: fill.timings.featureSeconds ?? null,
      mAP50: v.AP50,
      mAP: v.mAP,
      perEpochPer1000: median(perEpoch),
      perEpochPer1000All: perEpoch,
      timings: run.timings,
    };
    console.log(`  feature maps: run 1 computed ${fill.features.train?.computed ?? 0} in ${f(fill.timings.featureSeconds ?? NaN, 1)} s; run 2 read ${train.cached} from the store, computed ${train.computed}`);
    // The validation split (60 pictures at the defaults: one box ~1 point) is what training reports; the verdict is on
    // the held-out set the int8 part scores too (--heldout, as `mlctl evaluate PKG --data HELDOUT --split all`).
    const scored = run.package ? await scoreHeldout(args, data, await loadPackage(run.package.dir)) : undefined;
    const mAP50 = scored ? scored.AP50 : (v.AP50 ?? 0);
    Object.assign(result, { heldout: scored ?? null });
    console.log(`  val mAP50 ${f(v.AP50)} (${result.valPictures} pictures), mAP@[.5:.95] ${f(v.mAP)}${scored ? `; on ${scored.what}: ${scored.pictures} pictures, ${scored.boxes} boxes, mAP50 ${f(scored.AP50)}, mAP@[.5:.95] ${f(scored.mAP)}` : ''}`);
    console.log(`  mAP50${scored ? ' on the held-out pictures' : ' on the validation split'} ${f(mAP50)}   (target ≥ ${TRAIN_TARGETS.mAP50}: ${verdict(mAP50 >= TRAIN_TARGETS.mAP50)})`);
    console.log(`  head phase ${f(result.perEpochPer1000, 2)} s per epoch per 1,000 pictures from stored feature maps, median of ${perEpoch.length} (validation scoring included)   (target ≤ ${TRAIN_TARGETS.perEpochPer1000} s: ${verdict(result.perEpochPer1000 <= TRAIN_TARGETS.perEpochPer1000)})`);
    console.log(`  load average ${load()}`);
    await writeBenchResult('detection-train', { ...result, targets: TRAIN_TARGETS, loadavg: os.loadavg() });
    if (run.package) trained = { pkg: run.package.dir, data };
  }
}

/** The package and data int8 works on: --package/--data, else the train part's of this run (trained now if it did not run). */
async function packageAndData(args: string[]): Promise<{ pkg: string; data: string }> {
  const given = arg(args, '--package', '');
  if (given) {
    const data = arg(args, '--data', '');
    if (!data) throw new Error('--package DIR needs --data DIR: the annotated dataset it was trained on (int8 calibrates on its training split and both models are scored on its validation split)');
    return { pkg: given, data };
  }
  if (!trained) await trainPart(args);
  if (!trained) throw new Error('the train part saved no package');
  return trained;
}

/**
 * The int8 part's scoring set: --heldout N synthetic pictures generated apart from the training data (another seed), so
 * one box moves mAP50 by ~0.1 point instead of the validation split's ~1 (60 pictures, 102 boxes); scored as
 * `mlctl evaluate PKG --data HELDOUT --split all` scores it. --heldout 0: the model's validation split, as before.
 */
let heldoutSet: Promise<{ set: DetectionEvaluationData; what: string }> | undefined;
async function scoringSet(args: string[], data: string, m: LoadedPackage['manifest']): Promise<{ set: DetectionEvaluationData; what: string }> {
  const heldout = Number(arg(args, '--heldout', '600'));
  // One held-out set per run: the train and int8 parts score on the same pictures.
  if (heldout > 0) return (heldoutSet ??= heldoutScoringSet(args, heldout, m));
  const { params } = resolveSplitParams({}, m.training);
  return { set: await loadDetectionEvaluationData(data, 'val', params), what: 'the validation split' };
}

async function heldoutScoringSet(args: string[], heldout: number, m: LoadedPackage['manifest']): Promise<{ set: DetectionEvaluationData; what: string }> {
  const { params } = resolveSplitParams({}, m.training);
  const size = Number(arg(args, '--size', '128'));
  const seed = deriveSeed(Number(arg(args, '--seed', '1')), 'bench-detection-heldout');
  const out = path.join(await scratchDir(), 'heldout');
  const synth = await generateDetectionDataset({ out, images: heldout, size, classes: 3, seed });
  const unknown = m.labels.filter((l) => !synth.classes.includes(l));
  if (unknown.length) throw new Error(`--heldout scores synthetic pictures of ${synth.classes.join(', ')}; ${m.name} also has ${unknown.join(', ')}: pass --heldout 0 to score its validation split`);
  return { set: await loadDetectionEvaluationData(out, 'all', params), what: 'held-out synthetic pictures (another seed: neither trained nor calibrated on)' };
}

/** A package's mAP on the scoring set (--heldout; 0: its validation split), as `mlctl evaluate` computes it. */
async function scoreHeldout(args: string[], data: string, pkg: LoadedPackage) {
  const { set, what } = await scoringSet(args, data, pkg.manifest);
  const r = await evaluateDetectionPackage(pkg, mapDetectionLabels(set, pkg.manifest.labels), { logger: createLogger({ level: 'warn' }), latency: false });
  return { what, pictures: set.samples.length, boxes: set.samples.reduce((n, x) => n + x.boxes.length, 0), AP50: r.metrics.coco.AP50, mAP: r.metrics.coco.AP };
}

async function int8Part(args: string[]) {
  const { pkg: pkgDir, data } = await packageAndData(args);
  await selectBackend('wasm');
  const logger = createLogger({ level: 'warn' });
  const source = await loadPackage(pkgDir);
  const m = source.manifest;
  const calibration = Number(arg(args, '--calibration', '100'));
  const samples = Number(arg(args, '--calibration-samples', '3'));
  const { set, what } = await scoringSet(args, data, m);
  const boxes = set.samples.reduce((n, x) => n + x.boxes.length, 0);
  // One box of class c moves that class's AP50 by up to ~1/n_c, the mean over classes by 1/(classes · n_c).
  const perClass = m.labels.map((l) => set.samples.reduce((n, x) => n + x.boxes.filter((b) => set.classes[b.label] === l).length, 0));
  const oneBoxPoints = Math.max(...perClass.map((n) => 100 / (m.labels.length * Math.max(1, n))));
  // As `mlctl evaluate PKG PKG-INT8 --data DIR` runs it.
  const score = async (pkg: LoadedPackage) => {
    const r = await evaluateDetectionPackage(pkg, mapDetectionLabels(set, pkg.manifest.labels), { logger, latency: false });
    return { engine: r.engine.description, AP50: r.metrics.coco.AP50, mAP: r.metrics.coco.AP };
  };
  const fp32 = await score(source);
  // K calibration samples as `mlctl quantize --dtype int8 --data DIR [--seed S]` draws them: the first with the
  // model's own split seed (what a user gets by default), the others with the next seeds. The calibration sample is
  // seeded by the split seed, so another seed draws another 100 pictures (from another 80 % of the folder; the
  // scoring set above is apart from all of them). Its own gate, on mAP@[.5:.95] of that split, only marks the result.
  const base = resolveSplitParams({}, m.training).params.seed;
  const runs: Array<{ seed: number; calibrationImages: number; quantizedNodes: number; quantizeSeconds: number; gate: string; engine: string; AP50: number; mAP: number; dropPoints: number }> = [];
  for (let k = 0; k < samples; k++) {
    const seed = base + k;
    const t0 = performance.now();
    const q = await quantizeInt8Package(source, { logger, data, calibration, seed, latencyRuns: 0, root: path.join(await scratchDir(), `int8-artifacts-${k}`), name: `${m.name}-int8` });
    const quantizeSeconds = (performance.now() - t0) / 1000;
    const s = await score(q.package);
    runs.push({ seed, calibrationImages: q.calibrationImages, quantizedNodes: q.quantizedNodes, quantizeSeconds, gate: q.status, ...s, dropPoints: (fp32.AP50 - s.AP50) * 100 });
  }
  const drops = runs.map((r) => r.dropPoints);
  const mean = drops.reduce((a, b) => a + b, 0) / drops.length;
  const sd = drops.length > 1 ? Math.sqrt(drops.reduce((a, d) => a + (d - mean) ** 2, 0) / (drops.length - 1)) : 0;
  const ok = mean <= INT8_TARGETS.maxDropPoints;
  console.log(`detection int8: ${m.name} v${m.version} (${m.architecture.type ?? '?'}), ${samples} calibration samples of ${runs[0]?.calibrationImages ?? 0} training pictures (${runs[0]?.quantizedNodes ?? 0} int8 nodes), scored on ${what}: ${set.samples.length} pictures, ${boxes} boxes (one box moves mAP50 by up to ~${f(oneBoxPoints, 2)} points)`);
  console.log(`  fp32: mAP50 ${f(fp32.AP50)}, mAP@[.5:.95] ${f(fp32.mAP)}   (${fp32.engine})`);
  for (const r of runs) console.log(`  int8, calibration seed ${r.seed}: mAP50 ${f(r.AP50)}, mAP@[.5:.95] ${f(r.mAP)}, drop ${f(r.dropPoints, 2)} points   (quantized in ${f(r.quantizeSeconds, 1)} s; its own gate, on mAP@[.5:.95]: ${r.gate}; ${r.engine})`);
  console.log(`  mAP50 drop: mean ${f(mean, 2)} points over ${runs.length} calibration samples, spread ${f(Math.min(...drops), 2)} … ${f(Math.max(...drops), 2)} (sd ${f(sd, 2)})   (target: mean drop over ${runs.length} calibration samples ≤ ${INT8_TARGETS.maxDropPoints} point: ${verdict(ok)})   load average ${load()}`);
  if (oneBoxPoints >= INT8_TARGETS.maxDropPoints / 2) console.log(`  note: one box moves mAP50 by ~${f(oneBoxPoints, 2)} points, as much as the target's margin: the verdict is within counting noise — score more pictures (--heldout)`);
  if (fp32.AP50 < 0.1) console.log(`  note: the fp32 model finds almost nothing (mAP50 ${f(fp32.AP50)}); a drop measured on it says little — train longer (--epochs) or pass --package`);
  await writeBenchResult('detection-int8', { package: pkgDir, data, scoring: what, scoringPictures: set.samples.length, scoringBoxes: boxes, oneBoxPoints, fp32, int8: runs, meanDropPoints: mean, sdDropPoints: sd, targets: INT8_TARGETS, criterion: `mean mAP50 drop over ${runs.length} calibration samples`, loadavg: os.loadavg() });
}

/** The serve part's detector: MobileNetV2 + CenterNet at `size` px, random weights, saved by the train machinery after one epoch. */
let mobileDetector: { pkg: string; data: string; size: number } | undefined;
async function serveDetector(dir: string, size: number): Promise<{ pkg: string; data: string }> {
  if (mobileDetector?.size === size) return mobileDetector;
  const data = path.join(dir, `serve-objects-${size}`);
  await generateDetectionDataset({ out: data, images: 20, size, classes: 3, seed: 1 });
  const run = await runDetectionTrain({
    data, name: 'bench-detector-serve', skipInvalid: false, epochs: 1, batchSize: 8, imageSize: size, backbone: 'mobilenet_v2', alpha: 1,
    lr: 0.003, headChannels: 64, upsample: 1, maxDetections: 100, fineTune: 0, weights: 'none', augment: [], seed: 1, resume: false,
    validationSplit: 0.2, testSplit: 0, engine: 'auto', featureCache: false, artifacts: path.join(dir, 'serve-artifacts'), cache: path.join(dir, 'cache'),
    logger: createLogger({ level: 'warn' }),
  });
  if (!run.package) throw new Error('the detector for the serve part was not saved');
  mobileDetector = { pkg: run.package.dir, data, size };
  return mobileDetector;
}

async function servePart(args: string[]) {
  const size = Number(arg(args, '--serve-size', '320'));
  const clients = Number(arg(args, '--clients', '8'));
  const seconds = Number(arg(args, '--duration', '4'));
  const rounds = Number(arg(args, '--rounds', '3'));
  const dir = await scratchDir();
  await selectBackend('wasm');
  const jpeg = await requestJpeg();
  const detector = (await serveDetector(dir, size)).pkg;
  const classifier = (await benchPackage(path.join(dir, 'serve-artifacts'), { size, name: 'bench-classifier-serve', backbone: 'mobilenet_v2', labels: ['cat', 'dog', 'horse'], tool: 'bench/detection.ts' })).dir;
  const checkout = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const servers = [await startServe(checkout, detector, [], 'detector'), await startServe(checkout, classifier, [], 'classifier')];
  const acc = servers.map(() => ({ lat: [] as number[], seconds: 0, failed: 0, perRound: [] as number[], load: [] as number[] }));
  try {
    for (const s of servers) await closedLoop(s.url, jpeg, clients, 1); // warm-up: first sessions, first allocations
    for (let r = 0; r < rounds; r++) {
      // Interleaved, and the order swapped each round, so drifting load hits both alike.
      const order = r % 2 ? [1, 0] : [0, 1];
      for (const i of order) {
        const res = await closedLoop(servers[i]!.url, jpeg, clients, seconds);
        const a = acc[i]!;
        a.lat.push(...res.lat);
        a.seconds += res.seconds;
        a.failed += res.failed;
        a.perRound.push(res.lat.length / res.seconds);
        a.load.push(os.loadavg()[0]!);
      }
    }
  } finally {
    for (const s of servers) await s.stop();
  }
  const fig = acc.map((a) => ({ imgPerSec: a.lat.length / a.seconds, p50: pct(a.lat, 50), p99: pct(a.lat, 99), requests: a.lat.length, failed: a.failed, perRound: a.perRound }));
  const [det, cls] = fig as [(typeof fig)[0], (typeof fig)[0]];
  const share = det.imgPerSec / cls.imgPerSec;
  console.log(`detection serve: mlctl serve, /predict at c=${clients} on a 1024x768 JPEG, MobileNetV2 at ${size} px (random weights), ${rounds} interleaved rounds of ${seconds} s`);
  for (const [label, x] of [['detector (CenterNet)', det], ['classifier', cls]] as const) console.log(`  ${label}: ${f(x.imgPerSec, 1)} img/s (rounds ${x.perRound.map((v) => v.toFixed(1)).join(', ')}), p50 ${f(x.p50, 1)} ms, p99 ${f(x.p99, 1)} ms${x.failed ? `, ${x.failed} failed` : ''}`);
  console.log(`  detector/classifier ${f(share * 100, 1)}%   (target ≥ ${SERVE_TARGETS.share * 100}%: ${verdict(share >= SERVE_TARGETS.share && det.failed === 0)})   load average ${load()}`);
  await writeBenchResult('detection-serve', { size, clients, seconds, rounds, detector: det, classifier: cls, share, targets: SERVE_TARGETS, loadavg: os.loadavg(), loadDuring: acc.map((a) => a.load) });
}

async function watchPart(args: string[]) {
  const size = Number(arg(args, '--serve-size', '320'));
  const cameras = Number(arg(args, '--cameras', '15'));
  const seconds = Number(arg(args, '--seconds', '10'));
  const frames = Number(arg(args, '--latency-frames', '10'));
  const dir = await scratchDir();
  await selectBackend('wasm');
  const det = await serveDetector(dir, size);
  const logger = createLogger({ level: 'warn' });
  // The int8 detector as `mlctl quantize --dtype int8` makes it (random weights: its mAP gate is not the point here).
  const q = await quantizeInt8Package(await loadPackage(det.pkg), { logger, data: det.data, calibration: 16, latencyRuns: 0, root: path.join(dir, 'watch-artifacts'), name: 'bench-detector-int8', maxMapDrop: 100 });
  console.log(`detection watch: int8 MobileNetV2 CenterNet at ${size} px (random weights), ${cameras} MJPEG cameras at 1 fps (640x480) for ${seconds} s, alert latency over ${frames} alerts (bench/watch.ts's steps 2 and 3)`);
  const kept = await sustain(dir, q.package, cameras, seconds);
  const lat = await latency(dir, q.package, 'int8 detector', frames);
  console.log(`  ${cameras} cameras at 1 fps: ${kept.ok ? 'kept up' : 'fell behind'}   (target ≥ ${WATCH_TARGETS.cameras}: ${verdict(kept.ok && cameras >= WATCH_TARGETS.cameras)})   load average ${load()}`);
  console.log(`  alert latency p95 ${f(lat.p95, 0)} ms   (target < ${WATCH_TARGETS.p95Ms} ms: ${verdict(lat.n > 0 && lat.p95 < WATCH_TARGETS.p95Ms)})   load average ${load()}`);
  await writeBenchResult('detection-watch', { size, cameras, seconds, sustain: kept, latency: lat, targets: WATCH_TARGETS, loadavg: os.loadavg() });
}

const PARTS: Record<string, (args: string[]) => Promise<void>> = { train: trainPart, int8: int8Part, serve: servePart, watch: watchPart };

export async function main(args: string[]) {
  const only = arg(args, '--only', 'all');
  const parts = only === 'all' ? Object.keys(PARTS) : only.split(',');
  const unknown = parts.filter((p) => !PARTS[p]);
  if (unknown.length) throw new Error(`--only ${unknown.join(',')}: the parts are ${Object.keys(PARTS).join(', ')}`);
  try {
    for (const p of parts) await PARTS[p]!(args);
  } finally {
    await scratch?.cleanup();
  }
}
