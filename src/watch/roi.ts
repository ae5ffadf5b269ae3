// A camera's region of interest in pixels for one frame: percentages are taken of the frame's own size (read
// from the JPEG header, or by sharp for other formats), and the rectangle is clipped to the frame.
import sharp from 'sharp';
import type { Extent, RoiSpec } from './config/types.js';
import { jpegInfo } from './sources/jpeg.js';

export interface Region {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** Displayed size of a frame. Stream frames are read from the JPEG header; files (which may carry EXIF rotation) by sharp. */
export async function frameSize(image: Uint8Array, fromFile = false): Promise<{ width: number; height: number } | undefined> {
  const info = fromFile ? undefined : jpegInfo(image);
  if (info) return info;
  const meta = await sharp(image).metadata().catch(() => undefined);
  if (!meta?.width || !meta.height) return undefined;
  // EXIF orientations 5–8 swap the displayed width and height.
  return (meta.orientation ?? 1) >= 5 ? { width: meta.height, height: meta.width } : { width: meta.width, height: meta.height };
}

const px = (e: Extent, size: number) => Math.round(e.unit === '%' ? (e.value / 100) * size : e.value);

/** The ROI in pixels, clipped to a width x height frame; undefined when nothing of it is inside the frame. */
export function resolveRegion(roi: RoiSpec, width: number, height: number): Region | undefined {
  const left = Math.min(px(roi.x, width), width);
  const top = Math.min(px(roi.y, height), height);
  const w = Math.min(px(roi.width, width), width - left);
  const h = Math.min(px(roi.height, height), height - top);
  return w > 0 && h > 0 ? { left, top, width: w, height: h } : undefined;
}
