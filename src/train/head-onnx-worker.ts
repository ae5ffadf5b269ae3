// Worker-thread side of an fc1 shard (head-onnx.ts): holds its shard in its own memory and answers forward, update
// and read requests, so each core updates its part of the 25M-weight kernel in parallel.
import { parentPort, workerData } from 'node:worker_threads';
import { openFcShard, type FcShardApi, type FcShardInit } from './head-onnx-shard.js';

type Request =
  | { id: number; op: 'forward'; x: Float32Array; n: number }
  | { id: number; op: 'update'; dz: Float32Array; n: number; lrT: number }
  | { id: number; op: 'read'; withOptimizer: boolean }
  | { id: number; op: 'dispose' };

const port = parentPort!;
let shard: FcShardApi;
try {
  shard = await openFcShard(workerData as FcShardInit);
  port.postMessage({ op: 'ready' });
} catch (err) {
  port.postMessage({ op: 'fail', message: (err as Error).message });
}

port.on('message', (r: Request) => {
  const reply = async (): Promise<[unknown, ArrayBuffer[]]> => {
    switch (r.op) {
      case 'forward': {
        const { z, x } = await shard.forward(r.x, r.n);
        // The input buffer goes back to the main thread for the next batch.
        return [{ z, x }, [z.buffer as ArrayBuffer, x.buffer as ArrayBuffer]];
      }
      case 'update':
        await shard.update(r.dz, r.n, r.lrT);
        return [{}, []];
      case 'read': {
        const s = await shard.read(r.withOptimizer);
        return [s, [s.w, s.m, s.v].filter((a): a is Float32Array => a !== undefined).map((a) => a.buffer as ArrayBuffer)];
      }
      case 'dispose':
        await shard.dispose();
        return [{}, []];
    }
  };
  reply().then(
    ([result, transfer]) => port.postMessage({ id: r.id, ok: true, result }, transfer),
    (err: Error) => port.postMessage({ id: r.id, ok: false, message: err.message }),
  );
});
