// The frame pipeline: each camera has one slot for its newest sampled frame (a newer frame replaces a waiting one,
// counted as dropped, so a slow classifier never builds a backlog of stale frames); slots are served oldest first,
// keeping up to the classifier's capacity in flight so its batches stay full. Folder frames are never replaced.
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

export function createPipeline(classifier: Classifier, rois: Map<string, RoiSpec>, metrics: WatchMetrics, hooks: PipelineHooks): Pipeline {
  const slots = new Map<string, Slot>(); // insertion order = oldest waiting first
  let inflight = 0;
  let idleWaiters: Array<() => void> = [];

  const settleIdle = () => {
    if (inflight === 0 && slots.size === 0) idleWaiters.splice(0).forEach((w) => w());
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
    try {
      const region = await regionOf(frame);
      if (region === null) {
        metrics.framesDropped.inc({ camera: frame.camera, reason: 'roi' });
        return;
      }
      const result = await classifier.classify(frame.image, region);
      metrics.framesClassified.inc({ camera: frame.camera });
      metrics.frameLatencySeconds.observe({ camera: frame.camera }, (Date.now() - frame.at) / 1000);
      await hooks.result(frame, result, region);
    } catch (err) {
      if (err instanceof BadFrameError) hooks.corrupt(frame.camera, err.message);
      else hooks.failed(frame.camera, err as Error);
    } finally {
      inflight--;
      slot.done();
      pump();
    }
  }

  function pump(): void {
    while (inflight < classifier.capacity && slots.size) {
      const [camera, slot] = slots.entries().next().value as [string, Slot];
      slots.delete(camera);
      inflight++;
      void run(slot);
    }
    settleIdle();
  }

  return {
    offer(frame) {
      return new Promise<void>((resolve) => {
        const old = slots.get(frame.camera);
        if (old && old.frame.file === undefined) {
          metrics.framesDropped.inc({ camera: frame.camera, reason: 'busy' });
          old.done();
        }
        if (old && old.frame.file !== undefined) {
          // Folders offer one file at a time; a second one would be a bug, never a reason to lose a file.
          throw new Error(`camera ${frame.camera}: a folder frame is already waiting`);
        }
        // Replacing keeps the camera's place in line (how long it has waited); a served camera rejoins at the back.
        slots.set(frame.camera, { frame, done: resolve });
        pump();
      });
    },
    drain() {
      for (const [camera, slot] of slots) {
        if (slot.frame.file !== undefined) continue; // a folder file is handled, never dropped
        slots.delete(camera);
        metrics.framesDropped.inc({ camera, reason: 'shutdown' });
        slot.done();
      }
      pump();
      if (inflight === 0 && slots.size === 0) return Promise.resolve();
      return new Promise<void>((resolve) => idleWaiters.push(resolve));
    },
    inFlight: () => inflight + slots.size,
  };
}
