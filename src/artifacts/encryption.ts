// Model weights encrypted at rest: AES-256-GCM per file (random 96-bit nonce each, the file's package path as
// associated data), with the key supplied at run time (key file or MLCTL_MODEL_KEY) and never written anywhere.
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MlctlError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';
import { ENCRYPTION_ALGORITHM, ENCRYPTION_FORMAT, type EncryptionRecord, type Manifest } from './manifest.js';

export { ENCRYPTION_ALGORITHM, ENCRYPTION_FORMAT, type EncryptionRecord };

/** Environment variables with the key itself, or a file holding it (what --key-file defaults to). */
export const MODEL_KEY_ENV = 'MLCTL_MODEL_KEY';

/**
 * An encrypted file: MAGIC (8 bytes "MLCTLENC") | 0x01 | nonce (12) | ciphertext | GCM tag (16).
 * Associated data: "mlctl-aes-256-gcm-v1\0" + the file's path inside the package, so files cannot be swapped.
 */
const MAGIC = Buffer.from('MLCTLENC', 'ascii');
const FORMAT_BYTE = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
export const HEADER_BYTES = MAGIC.length + 1 + NONCE_BYTES;
export const OVERHEAD_BYTES = HEADER_BYTES + TAG_BYTES;

export interface ModelKey {
  /** 32 bytes. Kept in memory only; not enumerable, so JSON results, logs and spreads never carry it. */
  readonly bytes: Buffer;
  keyId: string;
  /** Where it came from, for messages ("--key-file k.key", "MLCTL_MODEL_KEY"); never the key itself. */
  source: string;
}

/** Key fingerprint: the first 128 bits of HMAC-SHA256(key, "mlctl model key id v1"), hex, prefixed. */
export function modelKeyId(key: Uint8Array): string {
  return `aes256:${createHmac('sha256', key).update('mlctl model key id v1').digest('hex').slice(0, 32)}`;
}

/** A key from text (64 hex digits or base64 of 32 bytes, surrounding whitespace ignored) or 32 raw bytes. */
export function parseModelKey(data: string | Uint8Array, source: string): ModelKey {
  const raw = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data);
  let bytes: Buffer | undefined;
  const text = raw.toString('utf8').trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) bytes = Buffer.from(text, 'hex');
  else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(text)) bytes = Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  else if (raw.length === 32) bytes = raw;
  if (!bytes || bytes.length !== 32) {
    throw new MlctlError('MODEL_KEY_INVALID', [source, 'it must be 32 bytes: 64 hex digits, base64 of 32 bytes, or 32 raw bytes (mlctl keys generate --type encryption writes one)']);
  }
  const key = { keyId: modelKeyId(bytes), source } as ModelKey;
  Object.defineProperty(key, 'bytes', { value: bytes, enumerable: false });
  return key;
}

/** The model key from --key-file (or MLCTL_MODEL_KEY_FILE), else MLCTL_MODEL_KEY; undefined when none is given. */
export async function loadModelKey(opts: { file?: string; env?: NodeJS.ProcessEnv } = {}): Promise<ModelKey | undefined> {
  const env = opts.env ?? process.env;
  if (opts.file) {
    const data = await fs.readFile(opts.file).catch((err: NodeJS.ErrnoException) => {
      throw new MlctlError('MODEL_KEY_INVALID', [opts.file!, `cannot read it (${err.code ?? err.message})`]);
    });
    return parseModelKey(data, opts.file);
  }
  const value = env[MODEL_KEY_ENV];
  return value ? parseModelKey(value, MODEL_KEY_ENV) : undefined;
}

/** Write a new random key as base64 text, mode 0600 from creation on. */
export async function generateModelKey(file: string, opts: { force?: boolean } = {}): Promise<{ file: string; keyId: string }> {
  const abs = path.resolve(file);
  if (!opts.force && (await fs.stat(abs).then(() => true, () => false))) throw new MlctlError('PACKAGE_EXISTS', [abs]);
  const bytes = randomBytes(32);
  await writeFileAtomic(abs, bytes.toString('base64') + '\n', 0o600);
  await fs.chmod(abs, 0o600);
  return { file: abs, keyId: modelKeyId(bytes) };
}

const aad = (rel: string) => Buffer.from(`${ENCRYPTION_FORMAT}\0${rel}`, 'utf8');

function header(nonce: Buffer): Buffer {
  return Buffer.concat([MAGIC, Buffer.from([FORMAT_BYTE]), nonce]);
}

/** Stream chunk for file-to-file encrypt/decrypt (stream buffers; their outputs are written, not kept). */
const CHUNK_BYTES = 1 << 20;

/** Run `input` through a GCM cipher or decipher into `out` at `offset` (GCM output is as long as its input). */
function gcmInto(c: { update(b: Uint8Array): Buffer }, input: Uint8Array, out: Buffer, offset: number): void {
  let o = offset;
  for (let i = 0; i < input.length; i += PIECE_BYTES) {
    const part = c.update(input.subarray(i, i + PIECE_BYTES));
    out.set(part, o);
    o += part.length;
  }
}

export function encryptBytes(key: ModelKey, rel: string, plaintext: Uint8Array): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key.bytes, nonce).setAAD(aad(rel));
  const out = Buffer.allocUnsafe(OVERHEAD_BYTES + plaintext.length);
  header(nonce).copy(out, 0);
  gcmInto(cipher, plaintext, out, HEADER_BYTES);
  cipher.final();
  cipher.getAuthTag().copy(out, HEADER_BYTES + plaintext.length);
  return out;
}

/** Why a file is not ciphertext this code can read, from its first bytes and size; undefined when it is. */
function headerProblem(head: Buffer, size: number): string | undefined {
  if (size < OVERHEAD_BYTES || !head.subarray(0, MAGIC.length).equals(MAGIC)) return `it is not an ${ENCRYPTION_FORMAT} file`;
  if (head[MAGIC.length] !== FORMAT_BYTE) return `unknown format version ${head[MAGIC.length]}`;
  return undefined;
}

function checkHeader(data: Uint8Array, rel: string, where: string): Buffer {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const problem = headerProblem(buf, buf.length);
  if (problem) throw new MlctlError('DECRYPTION_FAILED', [where, rel, problem]);
  return buf;
}

/** Decrypt one file's bytes in memory; the GCM tag is checked before anything is returned. */
export function decryptBytes(key: ModelKey, rel: string, data: Uint8Array, where: string): Buffer {
  const buf = checkHeader(data, rel, where);
  const nonce = buf.subarray(MAGIC.length + 1, HEADER_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', key.bytes, nonce).setAAD(aad(rel));
  decipher.setAuthTag(buf.subarray(buf.length - TAG_BYTES));
  const out = Buffer.allocUnsafe(buf.length - OVERHEAD_BYTES);
  gcmInto(decipher, buf.subarray(HEADER_BYTES, buf.length - TAG_BYTES), out, 0);
  try {
    decipher.final();
    return out;
  } catch {
    // Unauthenticated plaintext is wiped, never handed out.
    out.fill(0);
    throw new MlctlError('DECRYPTION_FAILED', [where, rel, 'the AES-GCM authentication tag does not match']);
  }
}

/** Bytes read from disk per step of decryptFileBytes (two in flight: the next is read while this one decrypts). */
const READ_BYTES = 256 << 10;
/**
 * GCM piece per update() when decrypting into a buffer of our own. Every update() allocates its output: 64 KiB comes
 * from the allocator's warm heap, 1 MiB from fresh pages, whose faults cost more than the AES itself (encrypted VGG16
 * load: 1.45x plain with 1 MiB pieces into a separate buffer, see bench/security.ts).
 */
const PIECE_BYTES = 64 << 10;

/**
 * Read and decrypt one encrypted file into one new buffer: the body is read in blocks (the next block is read while
 * this one decrypts) and deciphered straight into its place, without holding the ciphertext whole. `stored` lets a
 * caller hash the file as it is read and check that before the tag. The tag is checked before anything is returned;
 * on failure the partial plaintext is wiped.
 */
export async function decryptFileBytes(key: ModelKey, rel: string, file: string, where: string, stored: StoredBytesCheck = {}): Promise<Buffer> {
  const { onStored, checkStored } = stored;
  const fd = await fs.open(file, 'r');
  try {
    const size = (await fd.stat()).size;
    const head = Buffer.alloc(Math.min(size, HEADER_BYTES));
    await readFully(fd, head, 0);
    const problem = headerProblem(head, size);
    if (problem) {
      // The stored bytes' own check (a manifest hash) still comes first, as it would for a readable file.
      if (checkStored) {
        onStored?.(await fd.readFile());
        checkStored();
      }
      throw new MlctlError('DECRYPTION_FAILED', [where, rel, problem]);
    }
    const tag = Buffer.alloc(TAG_BYTES);
    await readFully(fd, tag, size - TAG_BYTES);
    const decipher = createDecipheriv('aes-256-gcm', key.bytes, head.subarray(MAGIC.length + 1, HEADER_BYTES)).setAAD(aad(rel));
    decipher.setAuthTag(tag);
    onStored?.(head);
    const length = size - OVERHEAD_BYTES;
    const out = Buffer.allocUnsafe(length);
    const blocks = [Buffer.allocUnsafe(Math.min(READ_BYTES, Math.max(1, length))), Buffer.allocUnsafe(Math.min(READ_BYTES, Math.max(1, length)))];
    const readBlock = (at: number, i: number) => readFully(fd, blocks[i % 2]!.subarray(0, Math.min(READ_BYTES, length - at)), HEADER_BYTES + at);
    let next = length > 0 ? readBlock(0, 0) : undefined;
    for (let at = 0, i = 0; at < length; at += READ_BYTES, i++) {
      const block = await next!;
      next = at + READ_BYTES < length ? readBlock(at + READ_BYTES, i + 1) : undefined;
      // A read failing while this block decrypts is reported when awaited, not as an unhandled rejection.
      next?.catch(() => undefined);
      onStored?.(block);
      for (let p = 0; p < block.length; p += PIECE_BYTES) out.set(decipher.update(block.subarray(p, p + PIECE_BYTES)), at + p);
    }
    onStored?.(tag);
    try {
      checkStored?.();
    } catch (err) {
      out.fill(0);
      throw err;
    }
    try {
      decipher.final();
      return out;
    } catch {
      // Unauthenticated plaintext is wiped, never handed out.
      out.fill(0);
      throw new MlctlError('DECRYPTION_FAILED', [where, rel, 'the AES-GCM authentication tag does not match']);
    }
  } finally {
    await fd.close();
  }
}

/** What a reader checks of the stored (encrypted) bytes: `onStored` sees each in order, `checkStored` runs before the tag. */
export interface StoredBytesCheck {
  onStored?: (bytes: Uint8Array) => void;
  checkStored?: () => void;
}

/** Fill `into` from `fd` at `position` (short reads continued); resolves to `into`. */
async function readFully(fd: fs.FileHandle, into: Buffer, position: number): Promise<Buffer> {
  for (let done = 0; done < into.length; ) {
    const { bytesRead } = await fd.read(into, done, into.length - done, position + done);
    if (bytesRead === 0) throw new Error(`unexpected end of file at byte ${position + done}`);
    done += bytesRead;
  }
  return into;
}

/** Stream-encrypt `src` into `dst` (a new file): constant memory for weight files of any size. */
export async function encryptFile(key: ModelKey, rel: string, src: string, dst: string, onBytes?: (n: number) => void): Promise<void> {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key.bytes, nonce).setAAD(aad(rel));
  const out = createWriteStream(dst, { flags: 'wx', highWaterMark: CHUNK_BYTES });
  out.write(header(nonce));
  const count = new Transform({
    transform(chunk: Buffer, _e, cb) {
      onBytes?.(chunk.length);
      cb(null, chunk);
    },
  });
  await pipeline(createReadStream(src, { highWaterMark: CHUNK_BYTES }), count, cipher, async function* (source) {
    for await (const chunk of source) yield chunk as Buffer;
    yield cipher.getAuthTag();
  }, out);
}

/**
 * Stream-decrypt `src` into `dst`. GCM authenticates only at the end, so `dst` must be inside a directory the caller
 * discards on failure (decrypt builds the new package in a temporary directory that is removed unless all succeed).
 */
export async function decryptFile(key: ModelKey, rel: string, src: string, dst: string, where: string, onBytes?: (n: number) => void): Promise<void> {
  const fd = await fs.open(src, 'r');
  let head: Buffer;
  let tag: Buffer;
  let size: number;
  try {
    size = (await fd.stat()).size;
    head = Buffer.alloc(Math.min(size, HEADER_BYTES));
    await fd.read(head, 0, head.length, 0);
    tag = Buffer.alloc(TAG_BYTES);
    if (size >= OVERHEAD_BYTES) await fd.read(tag, 0, TAG_BYTES, size - TAG_BYTES);
  } finally {
    await fd.close();
  }
  const problem = headerProblem(head, size);
  if (problem) throw new MlctlError('DECRYPTION_FAILED', [where, rel, problem]);
  const decipher = createDecipheriv('aes-256-gcm', key.bytes, head.subarray(MAGIC.length + 1, HEADER_BYTES)).setAAD(aad(rel));
  decipher.setAuthTag(tag);
  const end = size - TAG_BYTES - 1;
  const body = end >= HEADER_BYTES ? createReadStream(src, { start: HEADER_BYTES, end, highWaterMark: CHUNK_BYTES }) : (async function* () {})();
  const count = new Transform({
    transform(chunk: Buffer, _e, cb) {
      onBytes?.(chunk.length);
      cb(null, chunk);
    },
  });
  try {
    await pipeline(body, count, decipher, createWriteStream(dst, { flags: 'wx', highWaterMark: CHUNK_BYTES }));
  } catch (err) {
    if (err instanceof MlctlError) throw err;
    if (/auth|unable to authenticate/i.test((err as Error).message)) throw new MlctlError('DECRYPTION_FAILED', [where, rel, 'the AES-GCM authentication tag does not match']);
    throw err;
  }
}

/** True when the manifest says `rel` is stored encrypted. */
export function isEncryptedFile(manifest: Pick<Manifest, 'encryption'>, rel: string): boolean {
  return Boolean(manifest.encryption?.files.includes(rel));
}

/** The key to use for this package, or the reason there is none (missing, or another key than it was encrypted with). */
export function checkKeyFor(where: string, record: EncryptionRecord, key: ModelKey | undefined): ModelKey {
  if (!key) throw new MlctlError('MODEL_KEY_REQUIRED', [where, record.keyId]);
  if (key.keyId !== record.keyId) throw new MlctlError('MODEL_KEY_MISMATCH', [where, record.keyId, `${key.keyId} (from ${key.source})`]);
  return key;
}

/**
 * The files of a package that hold weights, which encryption covers: every TF.js model's weight shards (model.json
 * keeps the topology readable), the ONNX model, and any other format file (classic-model.json).
 */
export async function weightFiles(dir: string, manifest: Manifest): Promise<string[]> {
  const out = new Set<string>();
  for (const rel of Object.values(manifest.formats)) {
    if (!rel) continue;
    if (rel.endsWith('.json')) {
      const json = JSON.parse(await fs.readFile(path.join(dir, rel), 'utf8')) as { weightsManifest?: Array<{ paths: string[] }> };
      if (Array.isArray(json.weightsManifest)) {
        const base = path.posix.dirname(rel);
        for (const g of json.weightsManifest) for (const p of g.paths) out.add(base === '.' ? p : `${base}/${p}`);
        continue;
      }
    }
    out.add(rel);
  }
  for (const rel of out) if (!manifest.files[rel]) throw new MlctlError('PACKAGE_INVALID', [dir, `${rel} is a model file but not listed in the manifest's files`]);
  return [...out].sort();
}
