// Pixel size of an image as mlctl sees it: after EXIF orientation (data/preprocess.ts decodes oriented images, so
// boxes are in displayed coordinates), read from the header only.
import sharp from 'sharp';

export async function displayedSize(file: string): Promise<{ width: number; height: number }> {
  const m = await sharp(file, { failOn: 'error' }).metadata();
  if (!m.width || !m.height) throw new Error('no pixel size in its header');
  const swap = (m.orientation ?? 1) >= 5;
  return swap ? { width: m.height, height: m.width } : { width: m.width, height: m.height };
}
