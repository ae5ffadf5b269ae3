// A child mlctl process for benchmarks that measure a whole command: runs the CLI from source and reports its peak
// resident set size on stderr as "mlctl-peak-rss-kb N" and its CPU time (every thread) as "mlctl-cpu-ms N" when it exits.
import '../src/engines/index.js';
import { main } from '../src/cli/main.js';

process.on('exit', () => {
  const r = process.resourceUsage();
  process.stderr.write(`mlctl-peak-rss-kb ${r.maxRSS}\nmlctl-cpu-ms ${Math.round((r.userCPUTime + r.systemCPUTime) / 1000)}\n`);
});
process.exitCode = await main(process.argv);
