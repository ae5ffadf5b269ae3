// `mlctl watch [MODEL]`: the option table of the smart camera. Light: the runner (cli/run/watch.ts) is imported
// only when it runs. Cameras, rules and notifiers come from --config (YAML) and/or the flags below.
import { ENGINE, SESSION_OPTIONS } from '../options.js';
import { defineCommand, type ContextOf } from '../spec.js';

export const watchCommand = defineCommand({
  name: 'watch',
  summary: 'the smart camera: classify camera frames, fire rules, notify by webhook, MQTT or command',
  description:
    'Watch cameras (HTTP MJPEG or snapshot URLs, RTSP, video files and /dev/video* through ffmpeg, folders of images) ' +
    'with a model package or an inference server (--server, KServe V2), apply the rules (label, score, K of M frames, ' +
    'cooldown, active hours) and deliver each event to webhooks (HMAC-signed), MQTT (Home Assistant discovery) and ' +
    'command hooks. Every event is spooled on disk before delivery and delivered at least once, in order, with a ' +
    'stable id, across receiver outages and restarts. With --json, stdout is a stream: one JSON event per line, and ' +
    'a last line with the summary ({"ok": …}) or the error. SIGTERM/SIGINT stop cleanly (exit 0).',
  args: ['[model]'],
  options: [
    { flags: '-c, --config <file>', description: 'watch configuration (YAML: cameras, rules, notify, …); flags add to it', env: 'MLCTL_WATCH_CONFIG' },
    { flags: '--camera <name=url>', description: 'a camera (comma-separated for several): http(s) MJPEG/snapshot URL, rtsp://, video file, /dev/videoN or a folder', type: 'list' },
    { flags: '--rules <file>', description: 'rules file (YAML, `rules: [...]`)' },
    { flags: '--fps <n>', description: 'frames per second to classify per camera (0 = every frame; default 1)', type: 'float', min: 0, max: 120 },
    { flags: '--server <url>', description: 'classify on mlctl serve / a KServe V2 server instead of locally; MODEL is then its model name' },
    { flags: '--labels <list>', description: 'labels of a remote model, in output order (KServe metadata has none)', type: 'list' },
    { flags: '--webhook <url>', description: 'POST each event here (JSON; signed when a secret is set)' },
    { flags: '--webhook-secret <secret>', description: 'HMAC-SHA256 secret for --webhook', env: 'MLCTL_WEBHOOK_SECRET' },
    { flags: '--webhook-format <format>', description: 'body shape for --webhook', choices: ['json', 'ntfy', 'slack'] },
    { flags: '--mqtt <url>', description: 'publish events to this MQTT broker (mqtt://host:1883), with Home Assistant discovery' },
    { flags: '--exec <command>', description: 'run this shell command per event (event JSON on stdin)' },
    { flags: '--state-dir <dir>', description: 'spool, snapshots, events log and journals (default: watch-state next to the config, or in the working directory)', env: 'MLCTL_WATCH_STATE' },
    { flags: '--status-port <n>', description: 'serve /metrics, /healthz, /status and snapshots on this port (0 = any free port)', type: 'int', min: 0, max: 65535, env: 'MLCTL_WATCH_STATUS_PORT' },
    { flags: '--status-host <addr>', description: 'address for the status port (default 127.0.0.1)' },
    { ...ENGINE, description: 'local inference engine (default: the config file\'s, else auto)', default: undefined },
    ...SESSION_OPTIONS,
    { flags: '--max-batch <n>', description: 'most frames per engine batch across cameras (default 8)', type: 'int', min: 1, max: 256 },
  ],
  examples: [
    'mlctl watch cams --camera door=http://10.0.0.5/video.mjpg --rules rules.yaml --webhook https://ntfy.sh/my-door --webhook-format ntfy',
    'mlctl watch --config watch.yaml --status-port 9464',
    'mlctl watch cams --server http://inference:5000 --labels cat,dog,person --camera yard=rtsp://10.0.0.6/stream1 --mqtt mqtt://broker:1883',
    'mlctl watch cams --camera clip=recording.mp4 --rules rules.yaml --json | jq -c \'select(.type == "detection")\'',
  ],
  stream: true,
});

export type WatchContext = ContextOf<typeof watchCommand>;
