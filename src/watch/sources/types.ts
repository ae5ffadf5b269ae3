// What a frame source gives the camera supervisor: encoded images as they arrive. A source runs until its
// signal aborts (stop, stall) and fails by throwing; the supervisor owns reconnects, sampling and up/down.

export interface SourceFrame {
  /** Encoded image (JPEG from streams; JPEG, PNG or WebP from folders). */
  image: Buffer;
  /** The file it came from (folder sources). */
  file?: string;
}

export interface FrameSink {
  /**
   * A frame arrived. Live sources ignore the returned promise; a folder waits for it, so a file is journalled
   * only once its frame was handled (a crash before that processes it again).
   */
  frame(frame: SourceFrame): Promise<void> | void;
}

export interface OpenedSource {
  /** Resolves when the source ends by itself (a video file played to the end); rejects when it fails. */
  run(signal: AbortSignal, sink: FrameSink): Promise<void>;
  /** Short description for logs, without credentials. */
  describe: string;
  /** Whether ending by itself is final (a file) or a failure to reconnect from (a live stream). */
  endIsFinal: boolean;
  /** Whether a long silence is normal (a folder waits for files) rather than a stall. */
  quietIsNormal: boolean;
  /**
   * Paced sources wait for each frame to be handled before producing the next, so none is dropped and the
   * camera's fps is not applied by wall clock (a folder; a video file read faster than real time).
   */
  paced: boolean;
}

/** The stream is not what it should be (bad status, wrong content type, garbage): reconnecting may help. */
export class SourceFailure extends Error {
  override readonly name = 'SourceFailure';
}

/** Reject with the signal's reason when it aborts (a stall or stop ends a blocking wait). */
export function abortable<T>(signal: AbortSignal, work: Promise<T>): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/** Sleep that ends early (resolving) when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** A URL safe to print: the password replaced by ***. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}
