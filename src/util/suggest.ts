// "Did you mean …?" for names a user mistyped (models, versions, tags): the closest candidates by Levenshtein
// distance, within a third of the word's length (at least 2 edits), a case-only difference counting as closest.
import { distance } from 'fastest-levenshtein';

export function closeMatches(word: string, candidates: Iterable<string>, max = 3): string[] {
  const limit = Math.max(2, Math.floor(word.length / 3));
  const scored: Array<[string, number]> = [];
  for (const c of new Set(candidates)) {
    if (c === word) continue;
    const d = c.toLowerCase() === word.toLowerCase() ? 0.5 : distance(word.toLowerCase(), c.toLowerCase());
    // A prefix ("prod" for "production") is a likely meaning too.
    const prefix = word.length >= 3 && c.toLowerCase().startsWith(word.toLowerCase());
    if (d <= limit || prefix) scored.push([c, prefix ? Math.min(d, 1) : d]);
  }
  return scored.sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1)).slice(0, max).map(([c]) => c);
}

/** "; did you mean a or b?" or "". */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const m = closeMatches(word, candidates);
  return m.length ? `; did you mean ${m.length === 1 ? m[0] : `${m.slice(0, -1).join(', ')} or ${m[m.length - 1]}`}?` : '';
}
