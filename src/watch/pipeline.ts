// The frame pipeline: a live camera has one place for its newest sampled frame (a newer frame replaces a waiting one,
// counted as dropped, so a slow classifier never builds a backlog of stale frames); cameras are served oldest first,
// keeping up to the classifier's capacity in flight (two frames per camera at most) so its batches stay full.
// Frames of paced sources (folders, files read faster than real time) queue instead and are never dropped.
import type { Frame } from './camera.js';
import { BadFrameError, type Classifier, type ClassifyResult } from './classify.js';
import type { RoiSpec } from './config/types.js';
import type { WatchMetrics } from './metrics.js';
import { frameSize, resolveRegion, type Region } from './roi.js';

export interface PipelineHooks {
  result(frame: Frame, result: ClassifyResult, region: Region | undefined): Promise<void>;
  corrupt(camera: string, reason: string): void;
  failed(camera: string, err: Error): void;
  roiOutside(camera: string, width: number, height: number): void;
}

interface Slot {
  frame: Frame;
  done: () => void;
}

export interface Pipeline {
  /** Offer a sampled frame; resolves when it was handled (classified, dropped or failed). */
  offer(frame: Frame): Promise<void>;
  /** Drop frames still waiting (shutdown), then resolve once nothing is in flight. */
  drain(): Promise<void>;
  inFlight(): number;
}

/**
 * Frames of one camera in flight at most: one in the running batch and one in the next (as DeepStream's muxer puts
 * at most one frame per source in a batch). More would only queue a camera's older frames behind the engine, and a
 * slow engine would then alert on ever older frames; fewer would leave the engine idle between batches.
 */
const PER_CAMERA = 2;

export function createPipeline(classifier: Classifier, rois: Map<string, RoiSpec>, metrics: WatchMetrics, hooks: PipelineHooks): Pipeline {
  /** Frames waiting per camera, cameras in the order they started waiting (the oldest is served first). */
  const waiting = new Map<string, Slot[]>();
  let queued = 0;
  let inflight = 0;
  const perCamera = new Map<string, number>();
  /** Per camera, settled once the latest started frame (and every earlier one) is handled: results go out in frame order. */
  const turns = new Map<string, Promise<void>>();
  const idleWaiters: Array<() => void> = [];

  const settleIdle = () => {
    if (inflight === 0 && queued === 0) idleWaiters.splice(0).forEach((w) => w());
  };

  async function regionOf(frame: Frame): Promise<Region | undefined | null> {
    const roi = rois.get(frame.camera);
    if (!roi) return undefined;
    const size = await frameSize(frame.image, frame.file !== undefined);
    if (!size) return undefined; // undecodable: the classifier reports it as corrupt
    const region = resolveRegion(roi, size.width, size.height);
    if (!region) hooks.roiOutside(frame.camera, size.width, size.height);
    return region ?? null;
  }

  async function run(slot: Slot): Promise<void> {
    const { frame } = slot;
    // Two frames of a camera can be in flight and finish in either order; their results are handed on in frame
    // order, so K-of-M windows and the object tracker never see an older frame after a newer one.
    const before = turns.get(frame.camera);
    let release!: () => void;
    const handled = new Promise<void>((r) => (release = r));
    const turn = before ? before.then(() => handled) : handled;
    turns.set(frame.camera, turn);
    try {
      const region = await regionOf(frame);
      if (region === null) {
        metrics.framesDropped.inc({ camera: frame.camera, reason: 'roi' });
        return;
      }
      const result = await classifier.classify(frame.image, region);
      metrics.framesClassified.inc({ camera: frame.camera });
      metrics.frameLatencySeconds.observe({ camera: frame.camera }, (Date.now() - frame.at) / 1000);
      await before;
      await hooks.result(frame, result, region);
    } catch (err) {
      if (err instanceof BadFrameError) hooks.corrupt(frame.camera, err.message);
      else hooks.failed(frame.camera, err as Error);
    } finally {
      release();
      if (turns.get(frame.camera) === turn) void turn.then(() => turns.get(frame.camera) === turn && turns.delete(frame.camera));
      inflight--;
      perCamera.set(frame.camera, perCamera.get(frame.camera)! - 1);
      slot.done();
      pump();
    }
  }

  /** The camera that has waited longest and has room in flight. */
  function nextCamera(): string | undefined {
    for (const camera of waiting.keys()) if ((perCamera.get(camera) ?? 0) < PER_CAMERA) return camera;
    return undefined;
  }

  function pump(): void {
    let camera: string | undefined;
    while (inflight < classifier.capacity && queued && (camera = nextCamera()) !== undefined) {
      const list = waiting.get(camera)!;
      const slot = list.shift()!;
      waiting.delete(camera);
      // A camera with more (a paced source's queue) goes to the back: every camera gets its turn.
      if (list.length) waiting.set(camera, list);
      queued--;
      inflight++;
      perCamera.set(camera, (perCamera.get(camera) ?? 0) + 1);
      void run(slot);
    }
    settleIdle();
  }

  return {
    offer(frame) {
      return new Promise<void>((resolve) => {
        const list = waiting.get(frame.camera);
        const slot = { frame, done: resolve };
        if (!list) waiting.set(frame.camera, [slot]);
        else if (frame.lossless) list.push(slot);
        else {
          // A live camera keeps one frame waiting: the newer one replaces it, keeping the camera's place in line.
          metrics.framesDropped.inc({ camera: frame.camera, reason: 'busy' });
          list.splice(0).forEach((old) => old.done());
          queued -= 1;
          list.push(slot);
        }
        queued++;
        pump();
      });
    },
    drain() {
      for (const [camera, list] of waiting) {
        const live = list.filter((s) => !s.frame.lossless); // paced frames (files) are handled, never dropped
        if (!live.length) continue;
        metrics.framesDropped.inc({ camera, reason: 'shutdown' }, live.length);
        live.forEach((s) => s.done());
        queued -= live.length;
        const rest = list.filter((s) => s.frame.lossless);
        if (rest.length) waiting.set(camera, rest);
        else waiting.delete(camera);
      }
      pump();
      if (inflight === 0 && queued === 0) return Promise.resolve();
      return new Promise<void>((resolve) => idleWaiters.push(resolve));
    },
    inFlight: () => inflight + queued,
  };
}
