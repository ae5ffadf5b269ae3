// Small JPEG thumbnails as data: URIs for self-contained pages (the report's most confidently wrong images): decoded,
// EXIF-rotated and shrunk by sharp; an unreadable file gives no thumbnail rather than failing the whole page.
import sharp from 'sharp';

export interface ThumbnailOptions {
  /** Longest side in pixels (default 160). */
  size?: number;
  /** JPEG quality 1..100 (default 70). */
  quality?: number;
}

export async function thumbnailDataUri(file: string, o: ThumbnailOptions = {}): Promise<string | undefined> {
  const size = o.size ?? 160;
  try {
    const jpeg = await sharp(file, { failOn: 'error', limitInputPixels: 1e8 })
      .rotate()
      .resize(size, size, { fit: 'inside', withoutEnlargement: false })
      .flatten({ background: '#ffffff' })
      .jpeg({ quality: o.quality ?? 70, mozjpeg: true })
      .toBuffer();
    return `data:image/jpeg;base64,${jpeg.toString('base64')}`;
  } catch {
    return undefined;
  }
}

/** Thumbnails for many files, a few decodes at a time (order kept). */
export async function thumbnails(files: ReadonlyArray<string | undefined>, o: ThumbnailOptions & { concurrency?: number } = {}): Promise<Array<string | undefined>> {
  const out: Array<string | undefined> = new Array(files.length).fill(undefined);
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const i = next++;
      const f = files[i];
      if (f) out[i] = await thumbnailDataUri(f, o);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency ?? 4, files.length)) }, worker));
  return out;
}
