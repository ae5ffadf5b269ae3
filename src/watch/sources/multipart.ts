// Incremental parser for multipart/x-mixed-replace bodies (MJPEG over HTTP, as IP cameras, mjpg-streamer and
// `ffmpeg -f mpjpeg` serve them). Written here rather than taken from a form-data parser because cameras bend the
// format: boundaries given with or without the leading "--", parts with or without Content-Length, bodies
// without the CRLF before the next boundary, and streams that never end.

export interface MultipartOptions {
  boundary: string;
  /** Largest part accepted; anything bigger means the stream is not what it claims. */
  maxBytes: number;
  onPart(body: Buffer, headers: Record<string, string>): void;
}

/** The boundary parameter of a Content-Type header, or undefined. */
export function boundaryOf(contentType: string): string | undefined {
  const m = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return m ? (m[1] ?? m[2]) : undefined;
}

export function createMultipartParser(opts: MultipartOptions): { push(chunk: Buffer): void } {
  // Some cameras put "--" into the header's boundary already; look for the delimiter either way.
  const bare = opts.boundary.replace(/^--/, '');
  const delimiters = [Buffer.from(`--${bare}`), Buffer.from(bare)];
  let buf: Buffer = Buffer.alloc(0);
  let state: 'boundary' | 'headers' | 'body' = 'boundary';
  let headers: Record<string, string> = {};
  let length: number | undefined;

  const findDelimiter = (from: number): { at: number; len: number } | undefined => {
    for (const d of delimiters) {
      const at = buf.indexOf(d, from);
      if (at >= 0) return { at, len: d.length };
    }
    return undefined;
  };

  const step = (): boolean => {
    if (state === 'boundary') {
      const d = findDelimiter(0);
      if (!d) {
        if (buf.length > opts.maxBytes) throw new Error(`no multipart boundary "${bare}" within ${opts.maxBytes} bytes`);
        return false;
      }
      const eol = buf.indexOf('\n', d.at + d.len);
      if (eol < 0) return false;
      buf = buf.subarray(eol + 1);
      state = 'headers';
      headers = {};
      return true;
    }
    if (state === 'headers') {
      const eol = buf.indexOf('\n');
      if (eol < 0) {
        if (buf.length > 16 * 1024) throw new Error('a multipart part has more than 16 KiB of headers');
        return false;
      }
      const line = buf.subarray(0, eol).toString('latin1').replace(/\r$/, '');
      buf = buf.subarray(eol + 1);
      if (line === '') {
        const cl = headers['content-length'];
        length = cl !== undefined && /^\d+$/.test(cl.trim()) ? Number(cl) : undefined;
        if (length !== undefined && length > opts.maxBytes) throw new Error(`a multipart part announces ${length} bytes (limit ${opts.maxBytes})`);
        state = 'body';
        return true;
      }
      // A part that starts straight with image bytes (no headers at all): treat it as the body.
      if (buf.length && line.startsWith('\xff\xd8')) {
        buf = Buffer.concat([Buffer.from(line + '\n', 'latin1'), buf]);
        length = undefined;
        state = 'body';
        return true;
      }
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      return true;
    }
    // body
    if (length !== undefined) {
      if (buf.length < length) return false;
      opts.onPart(Buffer.from(buf.subarray(0, length)), headers);
      buf = buf.subarray(length);
    } else {
      const d = findDelimiter(0);
      if (!d) {
        if (buf.length > opts.maxBytes) throw new Error(`a multipart part without Content-Length grew past ${opts.maxBytes} bytes without a boundary`);
        return false;
      }
      let end = d.at;
      if (end >= 2 && buf[end - 2] === 0x0d && buf[end - 1] === 0x0a) end -= 2;
      else if (end >= 1 && buf[end - 1] === 0x0a) end -= 1;
      opts.onPart(Buffer.from(buf.subarray(0, end)), headers);
      buf = buf.subarray(end);
    }
    state = 'boundary';
    return true;
  };

  return {
    push(chunk) {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      while (step()) {
        /* keep parsing while whole pieces are available */
      }
    },
  };
}
