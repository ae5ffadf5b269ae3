// Shared set-up for the security suites: packages whose weights hold a known byte pattern (to prove plaintext never
// reaches disk), and a scanner that looks for it in a tree. The CLI runs through test/helpers/cli.ts runCli.
import * as tf from '@tensorflow/tfjs';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { LoadedPackage } from '../src/artifacts/package.js';
import { MlctlError } from '../src/errors.js';
import { selectBackend } from '../src/runtime/backend.js';
import { modelPackage, tinyModel } from './helpers/fixtures.js';

/** A float32 value no random initialiser produces; its bytes repeated are the plaintext marker. */
export const MARKER_VALUE = 1234.5677490234375;
/** Four consecutive marker floats: present in any file holding the conv kernel in plaintext, whatever its layout. */
export const MARKER = Buffer.from(new Float32Array([MARKER_VALUE, MARKER_VALUE, MARKER_VALUE, MARKER_VALUE]).buffer);

/** A tiny image classifier whose conv kernel is all MARKER_VALUE, saved as a package (with `extraFiles`). */
export async function markedPackage(root: string, opts: { name?: string; size?: number; extraFiles?: (model: tf.LayersModel) => Promise<Record<string, Uint8Array>> } = {}): Promise<LoadedPackage> {
  await selectBackend('cpu');
  const size = opts.size ?? 16;
  const model = tinyModel(size, 3, 5);
  try {
    const conv = model.getLayer('conv');
    const [kernel, bias] = conv.getWeights();
    conv.setWeights([tf.fill(kernel!.shape, MARKER_VALUE), bias!]);
    const extra = opts.extraFiles ? await opts.extraFiles(model) : undefined;
    return await modelPackage(root, model, {
      name: opts.name ?? 'marked',
      labels: ['circle', 'square', 'triangle'],
      size,
      ...(extra ? { extraFiles: extra, formats: { tfjs: 'model.json', ...(extra['model.onnx'] ? { onnx: 'model.onnx' } : {}) } } : {}),
    });
  } finally {
    model.dispose();
  }
}

/** Every file under `dirs` whose bytes contain `needle` (missing dirs are skipped). */
export async function filesContaining(dirs: string[], needle: Uint8Array): Promise<string[]> {
  const hits: string[] = [];
  const walk = async (d: string) => {
    for (const e of await fs.readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile() && (await fs.readFile(p)).includes(Buffer.from(needle))) hits.push(p);
    }
  };
  for (const d of dirs) await walk(d);
  return hits.sort();
}

/** Flip one bit of a file in place (at `offset`, default the middle). */
export async function flipByte(file: string, offset?: number): Promise<void> {
  const buf = await fs.readFile(file);
  const at = offset ?? Math.floor(buf.length / 2);
  buf[at] = buf[at]! ^ 0x01;
  await fs.writeFile(file, buf);
}

/** The mlctl error code a promise rejects with, or 'OK'. */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof MlctlError) return err.code;
    throw err;
  }
  return 'OK';
}
