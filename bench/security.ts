// Security benchmark on a VGG16-sized package: encrypt / decrypt throughput (streamed, into new versions), the cost
// of loading an encrypted package (decrypted in memory) against a plain one, sign and verify times, and raw AES-GCM
// in memory as the machine's ceiling. Interleaved rounds, best of each (the machine is shared).
// Usage: npm run bench -- security [--size 224] [--rounds 5]
import * as tf from '@tensorflow/tfjs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { encryptBytes, parseModelKey } from '../src/artifacts/encryption.js';
import { loadPackage, loadTfjsModel, savePackage, verifyPackageSignature, writeTfjsModel } from '../src/artifacts/package.js';
import { decryptPackage, encryptPackage, packageBytes, signPackageVersion } from '../src/artifacts/package-security.js';
import { generateSigningKeyPair, loadSigningKey, loadTrustedKeys } from '../src/artifacts/signing.js';
import { imageInputSpec } from '../src/data/preprocess.js';
import { applyHead } from '../src/models/head.js';
import { buildVgg16 } from '../src/models/backbones/vgg16.js';
import { selectBackend } from '../src/runtime/backend.js';
import { arg, writeBenchResult } from './_util.js';

/** Targets: streaming AES-GCM should not be the bottleneck of a deploy, nor decryption of a model load. */
const TARGETS = { encryptMiBs: 200, decryptMiBs: 200, encryptedLoadRatio: 1.25 } as const;

async function seconds(fn: () => Promise<unknown>): Promise<number> {
  return (await timed(fn)).wall;
}

/** Wall and process CPU seconds (every thread) of `fn`: on a loaded machine the CPU figure is the steadier one. */
async function timed(fn: () => Promise<unknown>): Promise<{ wall: number; cpu: number }> {
  const [t0, c0] = [performance.now(), process.cpuUsage()];
  await fn();
  const c = process.cpuUsage(c0);
  return { wall: (performance.now() - t0) / 1000, cpu: (c.user + c.system) / 1e6 };
}

const median = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

export async function main(args: string[]): Promise<void> {
  const size = Number(arg(args, '--size', '224'));
  const rounds = Number(arg(args, '--rounds', '5'));
  await selectBackend('cpu');
  const root = await mkdtemp(path.join(os.tmpdir(), 'mlctl-bench-security-'));
  try {
    const base = buildVgg16({ imageSize: size });
    const model = tf.model({ inputs: base.inputs, outputs: applyHead(base.outputs[0]!, { pooling: 'gap', units: 256, dropout: 0.5, classes: 5 }) });
    const pkg = await savePackage({
      root,
      name: 'vgg16',
      draft: {
        task: 'image-classification',
        labels: ['a', 'b', 'c', 'd', 'e'],
        input: imageInputSpec(size, 'caffe'),
        output: { name: 'predictions', kind: 'probabilities', size: 5 },
        architecture: { backbone: 'vgg16', params: model.countParams() },
        formats: { tfjs: 'model.json' },
        lineage: [{ op: 'bench', at: new Date().toISOString(), tool: 'bench/security' }],
      },
      write: (dir) => writeTfjsModel(dir, model),
    });
    model.dispose();
    const mib = packageBytes(pkg) / 2 ** 20;
    const key = parseModelKey(Buffer.alloc(32, 9), 'bench');
    await generateSigningKeyPair(path.join(root, 'keys'));
    const signing = await loadSigningKey(path.join(root, 'keys', 'mlctl.key.pem'));
    const trust = await loadTrustedKeys(path.join(root, 'keys', 'mlctl.pub.pem'));
    console.log(`package: VGG16 ${size}x${size} + head, ${Object.keys(pkg.manifest.files).length} files, ${mib.toFixed(1)} MiB; load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);

    const best: Record<string, number> = {};
    const keep = (k: string, s: number) => (best[k] = Math.min(best[k] ?? Infinity, s));
    // The encrypted load against the plain one of the same round (A/B pairs: the machine's speed drifts between rounds).
    const loadRatios: number[] = [];
    const cpuRatios: number[] = [];
    const buf = Buffer.alloc(64 * 2 ** 20, 1);
    for (let r = 0; r < rounds; r++) {
      keep('aes-gcm in memory (64 MiB)', await seconds(async () => encryptBytes(key, 'x', buf)));
      let enc = pkg;
      keep('encrypt (new version)', await seconds(async () => (enc = await encryptPackage(pkg, key))));
      keep('decrypt (new version)', await seconds(() => decryptPackage(enc, key)));
      const plainPkg = await loadPackage(pkg.dir, { verify: false });
      const encPkg = await loadPackage(enc.dir, { verify: false, key });
      const plainLoad = await timed(async () => (await loadTfjsModel(plainPkg)).dispose());
      const encLoad = await timed(async () => (await loadTfjsModel(encPkg)).dispose());
      keep('load plain (read + tf model)', plainLoad.wall);
      keep('load encrypted (read + decrypt + tf model)', encLoad.wall);
      loadRatios.push(encLoad.wall / plainLoad.wall);
      cpuRatios.push(encLoad.cpu / plainLoad.cpu);
      keep('sign (hash check + Ed25519)', await seconds(async () => signPackageVersion(await loadPackage(pkg.dir), signing)));
      keep('verify (hash check + Ed25519)', await seconds(async () => verifyPackageSignature(await loadPackage(pkg.dir), trust)));
    }
    const rate = (k: string, m: number) => m / best[k]!;
    const loadRatio = median(loadRatios);
    const cpuRatio = median(cpuRatios);
    const rows = [
      ['aes-gcm in memory (64 MiB)', `${rate('aes-gcm in memory (64 MiB)', 64).toFixed(0)} MiB/s`, '(ceiling)'],
      ['encrypt (new version)', `${rate('encrypt (new version)', mib).toFixed(0)} MiB/s`, `target ≥ ${TARGETS.encryptMiBs} MiB/s: ${(rate('encrypt (new version)', mib) / TARGETS.encryptMiBs).toFixed(2)}x`],
      ['decrypt (new version)', `${rate('decrypt (new version)', mib).toFixed(0)} MiB/s`, `target ≥ ${TARGETS.decryptMiBs} MiB/s: ${(rate('decrypt (new version)', mib) / TARGETS.decryptMiBs).toFixed(2)}x`],
      ['load plain (read + tf model)', `${best['load plain (read + tf model)']!.toFixed(3)} s`, ''],
      ['load encrypted (read + decrypt + tf model)', `${best['load encrypted (read + decrypt + tf model)']!.toFixed(3)} s`, `${loadRatio.toFixed(2)}x plain, median of ${rounds} paired rounds (best/best ${(best['load encrypted (read + decrypt + tf model)']! / best['load plain (read + tf model)']!).toFixed(2)}x); target ≤ ${TARGETS.encryptedLoadRatio}x: ${loadRatio <= TARGETS.encryptedLoadRatio ? 'met' : 'NOT met'}`],
      ['  same, in process CPU seconds', '', `${cpuRatio.toFixed(2)}x plain, median of ${rounds} paired rounds`],
      ['sign (hash check + Ed25519)', `${best['sign (hash check + Ed25519)']!.toFixed(3)} s`, ''],
      ['verify (hash check + Ed25519)', `${best['verify (hash check + Ed25519)']!.toFixed(3)} s`, ''],
    ];
    const w = Math.max(...rows.map((r) => r[0]!.length));
    for (const [k, v, t] of rows) console.log(`${k!.padEnd(w)}  ${v!.padStart(10)}  ${t}`);
    console.log(`best of ${rounds} interleaved rounds; load average now ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    await writeBenchResult('security', { size, mib, rounds, seconds: best, encryptedLoadRatios: loadRatios, encryptedLoadRatio: loadRatio, encryptedLoadCpuRatios: cpuRatios, encryptedLoadCpuRatio: cpuRatio, targets: TARGETS, loadavg: os.loadavg() });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
