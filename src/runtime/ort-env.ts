// ONNX Runtime's environment, set before its native add-on initialises. Recent onnxruntime-node builds (1.30 here)
// send usage telemetry to Microsoft on Linux and macOS and write files for it — a session file and a debug log in
// $TMPDIR, an event database under ~/.cache/Microsoft — which a read-only pod cannot write and a user never agreed
// to. mlctl opts out unless the user decided (ORT_DISABLE_TELEMETRY=0 opts back in). Import before onnxruntime-node.
if (process.env.ORT_DISABLE_TELEMETRY === undefined) process.env.ORT_DISABLE_TELEMETRY = '1';

