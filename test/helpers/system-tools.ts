// The Debian packages some tests drive for real (the ONNX reference checker, h5py, ffmpeg, mosquitto,
// an RTSP server, chromium, openssl, promtool). Probed once per run by the global setup; on a developer machine a test
// that needs a missing one skips, and the run prints one line naming the package. Under CI (`CI=true`, which
// `.ci/run` sets) a missing package fails every test file that needs it instead, so a green CI means they all ran.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export interface SystemTool {
  /** The Debian package that provides it. */
  pkg: string;
  /** What the tests use it for (printed when it is missing). */
  for: string;
  probe: () => boolean;
}

const runs = (cmd: string, args: string[]) => {
  try {
    return spawnSync(cmd, args, { stdio: 'ignore', timeout: 20_000 }).status === 0;
  } catch {
    return false;
  }
};

export const PYTHON = '/usr/bin/python3';
export const CHROMIUM = process.env.MLCTL_CHROMIUM ?? '/usr/bin/chromium';

export const SYSTEM_TOOLS = {
  pythonOnnx: { pkg: 'python3-onnx', for: 'the ONNX reference checker (onnx.checker full_check)', probe: () => runs(PYTHON, ['-c', 'import onnx']) },
  pythonProtobuf: { pkg: 'python3-protobuf', for: 'reading TensorBoard event files back with Google\'s protobuf runtime', probe: () => runs(PYTHON, ['-c', 'import google.protobuf.message_factory']) },
  pythonTorch: { pkg: 'python3-torchvision', for: 'real PyTorch/torchvision models exported to ONNX (mlctl import)', probe: () => runs(PYTHON, ['-c', "import importlib.util as u, sys; sys.exit(0 if all(u.find_spec(m) for m in ('torch', 'torchvision', 'onnx')) else 1)"]) },
  h5py: { pkg: 'python3-h5py', for: 'Keras .h5 weight files written independently of mlctl', probe: () => runs(PYTHON, ['-c', 'import h5py, numpy']) },
  ffmpeg: { pkg: 'ffmpeg', for: 'real video sources', probe: () => runs('ffmpeg', ['-version']) },
  mosquitto: { pkg: 'mosquitto', for: 'a real MQTT broker', probe: () => existsSync('/usr/sbin/mosquitto') || runs('mosquitto', ['-h']) },
  rtspServer: { pkg: 'rtsp-server-perl', for: 'a real RTSP camera (watch)', probe: () => existsSync('/usr/bin/rtsp-server-perl') },
  chromium: { pkg: 'chromium', for: 'real-browser tests', probe: () => existsSync(CHROMIUM) },
  openssl: { pkg: 'openssl', for: 'cross-checks with stock openssl', probe: () => runs('openssl', ['version']) },
  promtool: { pkg: 'prometheus', for: "promtool check metrics (Prometheus's metric-name lint)", probe: () => runs('promtool', ['--version']) },
} satisfies Record<string, SystemTool>;

export type ToolName = keyof typeof SYSTEM_TOOLS;
export type ToolAvailability = Record<ToolName, boolean>;

export function probeTools(): ToolAvailability {
  return Object.fromEntries(Object.entries(SYSTEM_TOOLS).map(([k, t]) => [k, t.probe()])) as ToolAvailability;
}

/** A CI run (`CI` set, as every CI service and `.ci/run` set it): a test that would skip for a missing tool fails. */
export function isCi(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = (env.CI ?? '').trim().toLowerCase();
  return v !== '' && v !== '0' && v !== 'false';
}

/** The one line a developer machine prints for a missing package. */
export function skipLine(name: ToolName): string {
  const t = SYSTEM_TOOLS[name];
  return `skipping tests that need ${t.pkg} (${t.for}): not installed — apt-get install ${t.pkg}`;
}

/** Why a CI run fails for a missing package (thrown by the test files that need it, printed by the global setup). */
export function ciMissingMessage(name: ToolName): string {
  const t = SYSTEM_TOOLS[name];
  return `CI=true and ${t.pkg} is not installed: the tests that need it (${t.for}) cannot run, and a CI run must not skip them — apt-get install ${t.pkg} (.ci/run installs it)`;
}
