// Value readers more than one section uses: names (cameras, rules, zones) and extents (pixels or % of the frame).
import type { Field } from './reader.js';
import type { Extent } from './types.js';

export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** Pixels (a whole number) or a percentage of the frame ("NN%"). */
export function readExtent(f: Field): Extent {
  if (typeof (f.node as { value?: unknown } | undefined)?.value === 'string') {
    const s = f.string();
    const pct = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(s);
    if (!pct || Number(pct[1]) > 100) f.fail(`${JSON.stringify(s)} is neither pixels (a whole number) nor a percentage 0%–100%`);
    return { value: Number(pct![1]), unit: '%' };
  }
  return { value: f.number({ min: 0, integer: true }), unit: 'px' };
}
