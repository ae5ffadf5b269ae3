// Command hook notifier: runs a command per event with the event as JSON on stdin and its main fields in
// MLCTL_* environment variables. Exit 0 is delivered; a non-zero exit, a signal or the timeout is retried.
import { spawn } from 'node:child_process';
import type { ExecSink } from '../config/types.js';
import { DeliveryError, type Sink } from './types.js';

export function execSink(cfg: ExecSink): Sink {
  const argv = typeof cfg.command === 'string' ? ['/bin/sh', '-c', cfg.command] : cfg.command;
  return {
    config: cfg,
    describe: `command ${cfg.name} (${typeof cfg.command === 'string' ? cfg.command : cfg.command.join(' ')})`,
    deliver(event, ctx) {
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        MLCTL_EVENT_ID: event.id,
        MLCTL_EVENT_TYPE: event.type,
        MLCTL_CAMERA: event.camera,
        MLCTL_SEVERITY: event.severity,
        MLCTL_MESSAGE: event.message,
        MLCTL_DELIVERY_ATTEMPT: String(ctx.attempt),
        ...(event.rule ? { MLCTL_RULE: event.rule } : {}),
        ...(event.label ? { MLCTL_LABEL: event.label } : {}),
        ...(event.score !== undefined ? { MLCTL_SCORE: String(event.score) } : {}),
        ...(ctx.snapshotPath ? { MLCTL_SNAPSHOT: ctx.snapshotPath } : {}),
      };
      return new Promise<void>((resolve, reject) => {
        const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['pipe', 'ignore', 'pipe'] });
        let stderr = '';
        child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr = (stderr + s).slice(-500)));
        const timer = setTimeout(() => child.kill('SIGKILL'), cfg.timeoutMs);
        const onAbort = () => child.kill('SIGTERM');
        ctx.signal.addEventListener('abort', onAbort, { once: true });
        child.stdin.on('error', () => {}); // a command that does not read stdin closes it early: not a failure
        child.stdin.end(JSON.stringify(event) + '\n');
        child.on('error', (err: NodeJS.ErrnoException) => {
          clearTimeout(timer);
          reject(new DeliveryError(err.code === 'ENOENT' ? `${argv[0]} not found (check the command's path)` : err.message));
        });
        child.on('close', (code, signal) => {
          clearTimeout(timer);
          ctx.signal.removeEventListener('abort', onAbort);
          if (code === 0) return resolve();
          const why = signal === 'SIGKILL' && !ctx.signal.aborted ? `timed out after ${cfg.timeoutMs} ms` : code !== null ? `exited with ${code}` : `killed by ${signal}`;
          reject(new DeliveryError(`${why}${stderr.trim() ? `: ${stderr.trim().split('\n').pop()}` : ''}`));
        });
      });
    },
    async close() {},
  };
}
