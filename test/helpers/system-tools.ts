// The Debian packages some tests drive for real (the ONNX reference checker, scikit-learn, ffmpeg, mosquitto,
// an RTSP server, chromium, openssl, promtool). Probed once per run by the global setup; a test that needs a missing
// one skips, and the run prints one line naming the package. `.ci/run` installs them all, so CI runs every test.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface SystemTool {
  /** The Debian package that provides it. */
  pkg: string;
  /** What the tests use it for (printed when it is missing). */
  for: string;
  probe: () => boolean;
  /** What to do when it is missing, when that is not `apt-get install <pkg>`. */
  remedy?: string;
}

const runs = (cmd: string, args: string[]) => {
  try {
    return spawnSync(cmd, args, { stdio: 'ignore', timeout: 20_000 }).status === 0;
  } catch {
    return false;
  }
};

/** Can this process mount (and unmount) a tmpfs: root, and a kernel and container that allow it? */
function canMountTmpfs(): boolean {
  if (process.getuid?.() !== 0) return false;
  const dir = mkdtempSync(path.join(tmpdir(), 'mlctl-tmpfs-probe-'));
  try {
    return runs('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir]) && runs('umount', [dir]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const PYTHON = '/usr/bin/python3';
export const CHROMIUM = process.env.MLCTL_CHROMIUM ?? '/usr/bin/chromium';

export const SYSTEM_TOOLS = {
  pythonOnnx: { pkg: 'python3-onnx', for: 'the ONNX reference checker (onnx.checker full_check)', probe: () => runs(PYTHON, ['-c', 'import onnx']) },
  pythonProtobuf: { pkg: 'python3-protobuf', for: 'reading TensorBoard event files back with Google\'s protobuf runtime', probe: () => runs(PYTHON, ['-c', 'import google.protobuf.message_factory']) },
  sklearn: { pkg: 'python3-sklearn', for: 'scikit-learn cross-checks', probe: () => runs(PYTHON, ['-c', 'import sklearn']) },
  ffmpeg: { pkg: 'ffmpeg', for: 'real video sources', probe: () => runs('ffmpeg', ['-version']) },
  mosquitto: { pkg: 'mosquitto', for: 'a real MQTT broker', probe: () => existsSync('/usr/sbin/mosquitto') || runs('mosquitto', ['-h']) },
  rtspServer: { pkg: 'rtsp-server-perl', for: 'a real RTSP camera (watch)', probe: () => existsSync('/usr/bin/rtsp-server-perl') },
  chromium: { pkg: 'chromium', for: 'real-browser tests', probe: () => existsSync(CHROMIUM) },
  openssl: { pkg: 'openssl', for: 'cross-checks with stock openssl', probe: () => runs('openssl', ['version']) },
  promtool: { pkg: 'prometheus', for: "promtool check metrics (Prometheus's metric-name lint)", probe: () => runs('promtool', ['--version']) },
  tmpfs: { pkg: 'mount', for: 'a small real tmpfs to fill up (disk full)', probe: canMountTmpfs, remedy: 'needs root where mounting is allowed' },
} satisfies Record<string, SystemTool>;

export type ToolName = keyof typeof SYSTEM_TOOLS;
export type ToolAvailability = Record<ToolName, boolean>;

export function probeTools(): ToolAvailability {
  return Object.fromEntries(Object.entries(SYSTEM_TOOLS).map(([k, t]) => [k, t.probe()])) as ToolAvailability;
}
