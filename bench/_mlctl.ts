// A child mlctl process for benchmarks that measure a whole command: runs the CLI from source and reports its peak
// resident set size on stderr as "mlctl-peak-rss-kb N" when it exits.
import '../src/engines/index.js';
import { main } from '../src/cli/main.js';

process.on('exit', () => process.stderr.write(`mlctl-peak-rss-kb ${process.resourceUsage().maxRSS}\n`));
process.exitCode = await main(process.argv);
