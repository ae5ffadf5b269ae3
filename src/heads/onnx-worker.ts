// Worker-thread side of an fc1 shard (onnx.ts): ready as soon as its modules are loaded (the main thread makes the
// starting weights meanwhile), then opens the shard in its own memory on `open` and answers forward, update and read
// requests, so each core updates its part of the 25M-weight kernel in parallel.
import { serveWorkerRequests } from '../util/worker.js';
import { openFcShard, type FcShardApi, type FcShardInit, type FcSnapshot } from './onnx-shard.js';

type Request =
  | { id: number; op: 'open'; init: FcShardInit }
  | { id: number; op: 'forward'; x: Float32Array; n: number }
  | { id: number; op: 'update'; dz: Float32Array; n: number; lrT: number }
  | { id: number; op: 'read'; dst: FcSnapshot; row0: number }
  | { id: number; op: 'dispose' };

const buffers = (...arrays: Array<Float32Array | undefined>) => arrays.filter((a): a is Float32Array => a !== undefined).map((a) => a.buffer as ArrayBuffer);

await serveWorkerRequests<{ shard?: FcShardApi }, Request>(
  async () => ({ state: {}, ready: {} }),
  async (state, r) => {
    if (r.op === 'open') {
      state.shard = await openFcShard(r.init);
      return [undefined, []];
    }
    const shard = state.shard;
    if (!shard) throw new Error(`fc1 shard: ${r.op} before open`);
    switch (r.op) {
      case 'forward': {
        // The input buffer goes back to the main thread for the next batch.
        const out = await shard.forward(r.x, r.n);
        return [out, buffers(out.z, out.x)];
      }
      case 'update':
        await shard.update(r.dz, r.n, r.lrT);
        return [undefined, []];
      case 'read':
        // dst lives on SharedArrayBuffers: the rows land in the main thread's arrays directly.
        await shard.readInto(r.dst, r.row0);
        return [undefined, []];
      case 'dispose':
        await shard.dispose();
        return [undefined, []];
    }
  },
);
