// `mlctl serve` as a real process: start on an ephemeral port, answer a request, and on SIGTERM finish the
// request still waiting in the batching queue before exiting 0; a missing model directory exits 1.
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import sharp from 'sharp';
import { spawnCli } from './helpers/cli.js';
import { tempDir, tinyPackage } from './helpers/fixtures.js';

let tmp: { dir: string; cleanup: () => Promise<void> };

beforeAll(async () => {
  tmp = await tempDir('mlctl-serve-cli-');
  await tinyPackage(path.join(tmp.dir, 'models'), { name: 'tiny' });
});
afterAll(() => tmp?.cleanup());

describe('mlctl serve (process)', () => {
  it('drains an in-flight request on SIGTERM and exits 0', async () => {
    const cli = spawnCli(['serve', path.join(tmp.dir, 'models'), '--port', '0', '--backend', 'cpu', '--engine', 'tfjs']);
    try {
      const url = await cli.listening();
      expect((await fetch(`${url}/v2/health/ready`)).status).toBe(200);
      // The request is in flight when SIGTERM arrives: its headers and half its body are sent, the rest follows once the
      // server says it is shutting down. "Expect: 100-continue" makes the server say when it has taken the request.
      const img = await sharp({ create: { width: 400, height: 300, channels: 3, background: { r: 200, g: 10, b: 10 } } }).jpeg().toBuffer();
      const req = http.request(`${url}/predict`, { method: 'POST', headers: { 'content-type': 'image/jpeg', 'content-length': img.length, expect: '100-continue' } });
      const answered = new Promise<http.IncomingMessage>((resolve, reject) => req.on('response', resolve).on('error', reject));
      await new Promise<void>((r) => req.once('continue', () => r()));
      req.write(img.subarray(0, img.length >> 1));
      cli.child.kill('SIGTERM');
      await cli.waitFor(/shutting down: no new requests/);
      req.end(img.subarray(img.length >> 1));
      const res = await answered;
      expect(res.statusCode).toBe(200);
      const raw: Buffer[] = [];
      for await (const chunk of res) raw.push(chunk as Buffer);
      const answer = JSON.parse(Buffer.concat(raw).toString()) as { predictions: number[][]; model: string };
      expect(answer.model).toBe('tiny');
      expect(answer.predictions[0]).toHaveLength(3);
      expect(await cli.exited).toBe(0);
      // --log-format json (the default): every stderr line is one JSON object — mlctl's own, the request logs and the
      // final line alike — and stdout carries nothing to mix with them.
      expect(cli.out()).toBe('');
      const logLines = cli.err().split('\n').filter((l) => l.trim());
      for (const l of logLines) expect(() => JSON.parse(l), l).not.toThrow();
      const lines = logLines.map((l) => JSON.parse(l) as Record<string, any>);
      expect(lines.every((l) => typeof l.level === 'number' && typeof l.time === 'number' && typeof l.msg === 'string')).toBe(true);
      expect(lines.at(-1)!.msg).toMatch(/stopped on SIGTERM after draining/);
      expect(lines.some((l) => /^backend: /.test(l.msg))).toBe(true);
      const access = lines.find((l) => l.route === '/predict');
      expect(access).toMatchObject({ statusCode: 200, method: 'POST' });
      expect(access!.reqId).toMatch(/[0-9a-f-]{36}/);
    } finally {
      cli.child.kill('SIGKILL');
    }
  });

  it('--log-format text: plain lines only, request logs included, and the stop line on stdout', async () => {
    const cli = spawnCli(['serve', path.join(tmp.dir, 'models'), '--port', '0', '--backend', 'cpu', '--engine', 'tfjs', '--log-format', 'text']);
    try {
      const url = (await cli.waitFor(/serving on (http:\/\/\S+)/))[1]!;
      expect((await fetch(`${url}/v2/health/ready`)).status).toBe(200);
      cli.child.kill('SIGTERM');
      expect(await cli.exited).toBe(0);
      const lines = cli.err().split('\n').filter((l) => l.trim());
      expect(lines.filter((l) => l.trimStart().startsWith('{'))).toEqual([]);
      expect(lines.some((l) => /^request completed .*url=\/v2\/health\/ready .*statusCode=200/.test(l))).toBe(true);
      expect(cli.out()).toMatch(/^stopped on SIGTERM after draining/);
    } finally {
      cli.child.kill('SIGKILL');
    }
  });

  it('serves the versions that verify, reports a tampered one, and honours a short --drain-timeout', async () => {
    const root = path.join(tmp.dir, 'mixed');
    await tinyPackage(root, { name: 'tiny', seed: 1 });
    const bad = await tinyPackage(root, { name: 'tiny', seed: 2 });
    const shard = Object.keys(bad.manifest.files).find((f) => f.endsWith('.bin'))!;
    const bytes = await fs.readFile(path.join(bad.dir, shard));
    bytes[0] = bytes[0]! ^ 0xff;
    await fs.writeFile(path.join(bad.dir, shard), bytes);
    const cli = spawnCli(['serve', path.join(root, 'tiny'), '--port', '0', '--backend', 'cpu', '--engine', 'tfjs', '--drain-timeout', '400ms', '--json']);
    try {
      const url = await cli.listening();
      expect(cli.err()).toMatch(/model tiny v2 is unavailable .*integrity check/);
      const ready2 = await fetch(`${url}/v2/models/tiny/versions/2/ready`);
      expect(ready2.status).toBe(503);
      expect(((await ready2.json()) as { ready: boolean }).ready).toBe(false);
      expect((await fetch(`${url}/v2/models/tiny/versions/1/ready`)).status).toBe(200);
      // A request whose body never completes is in flight when SIGTERM arrives: the drain gives up after 400 ms.
      // "Expect: 100-continue" makes the server say when it has taken the request (headers parsed, handed to the
      // routes), so SIGTERM is sent once it is in flight, not after a guessed sleep.
      const { port } = new URL(url);
      const socket = net.connect(Number(port), '127.0.0.1');
      socket.on('error', () => {});
      await new Promise((r) => socket.on('connect', r));
      let heard = '';
      const taken = new Promise<void>((r) => socket.on('data', (d) => (heard += d) && /^HTTP\/1\.1 100 /.test(heard) && r()));
      const cut = new Promise<void>((r) => socket.on('close', () => r()));
      socket.write('POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n');
      await taken;
      socket.write('abc');
      cli.child.kill('SIGTERM');
      expect(await cli.exited).toBe(0);
      // The server cut the request it gave up on (the body never came, so nothing else could have ended it).
      await cut;
      expect(heard).not.toMatch(/HTTP\/1\.1 200/);
      const result = JSON.parse(cli.out()) as { ok: boolean; drained: boolean; ms: number; unavailable: Array<{ version: number }> };
      expect(result.drained).toBe(false);
      // It waited out --drain-timeout 400ms, and that, not the 10 s default, is what ended the wait.
      expect(result.ms).toBeGreaterThanOrEqual(350);
      expect(result.ms).toBeLessThan(10_000);
      expect(result.unavailable).toMatchObject([{ version: 2 }]);
      socket.destroy();
    } finally {
      cli.child.kill('SIGKILL');
    }
  });

  it('exits 1 with a clear message when there is nothing to serve', async () => {
    const cli = spawnCli(['serve', path.join(tmp.dir, 'nothing-here'), '--port', '0', '--backend', 'cpu']);
    expect(await cli.exited).toBe(1);
    expect(cli.err()).toMatch(/no model package/);
  });

  it('a start that fails after the models loaded (port taken) exits 1 instead of hanging on the engine threads', async () => {
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const cli = spawnCli(['serve', path.join(tmp.dir, 'models'), '--port', String(port), '--grpc-port', '0', '--backend', 'cpu', '--json']);
      // A hang fails on the test's own timeout; the process goes with the test whatever happened.
      onTestFinished(() => void cli.child.kill('SIGKILL'));
      const code = await cli.exited;
      expect(code, cli.err()).toBe(1);
      expect(JSON.parse(cli.out()).error.message).toMatch(/EADDRINUSE/);
    } finally {
      await new Promise((r) => taken.close(r));
    }
  });
});
