// Backend selection: auto prefers tensorflow → wasm → cpu and says why; named backends fail loudly.
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import { describeBackend, parseBackendChoice, selectBackend } from '../src/runtime/backend.js';
import { MlctlError } from '../src/errors.js';

const require = createRequire(import.meta.url);
const hasTfjsNode = (() => {
  try {
    require.resolve('@tensorflow/tfjs-node');
    return true;
  } catch {
    return false;
  }
})();

describe('backend selection', () => {
  it('parses choices, aliases and rejects unknown names as usage errors', () => {
    expect(parseBackendChoice(undefined)).toBe('auto');
    expect(parseBackendChoice('WASM')).toBe('wasm');
    expect(parseBackendChoice('tfjs-node')).toBe('tensorflow');
    const err = (() => {
      try {
        parseBackendChoice('gpu');
      } catch (e) {
        return e as MlctlError;
      }
    })();
    expect(err?.exitCode).toBe(2);
    expect(err?.message).toMatch(/auto, tensorflow, wasm, cpu/);
  });

  it('auto picks the best backend that loads and explains skipped ones', async () => {
    const info = await selectBackend('auto');
    expect(tf.getBackend()).toBe(info.name);
    if (hasTfjsNode) {
      expect(info.name).toBe('tensorflow');
    } else {
      expect(info.name).toBe('wasm');
      expect(info.skipped.map((s) => s.name)).toEqual(['tensorflow']);
      expect(describeBackend(info)).toMatch(/backend: wasm, chosen automatically \(tensorflow unavailable\)/);
    }
    // The chosen backend actually computes.
    expect(Array.from(tf.add(tf.tensor([1, 2]), tf.tensor([3, 4])).dataSync())).toEqual([4, 6]);
  });

  it('switches to an explicitly named backend', async () => {
    const cpu = await selectBackend('cpu');
    expect(cpu.name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    const wasm = await selectBackend('wasm');
    expect(wasm.name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
  });

  it.skipIf(hasTfjsNode)('fails clearly when the named backend cannot load', async () => {
    const err = await selectBackend('tensorflow').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MlctlError);
    expect((err as MlctlError).code).toBe('BACKEND_UNAVAILABLE');
    expect((err as Error).message).toMatch(/backend tensorflow is not available/);
  });
});
