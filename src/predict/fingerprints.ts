// A compact set of 64-bit string fingerprints (open addressing over a Uint32Array): `--resume` remembers millions
// of finished inputs in 8–16 bytes each instead of a JS string Set's ~80. Two keys share a fingerprint with
// probability ~n²/2⁶⁵ (10 million keys: 3 in a million), the price of not keeping the keys.
import { createHash } from 'node:crypto';

export class FingerprintSet {
  private slots = new Uint32Array(2 * 1024);
  private used = 0;

  get size(): number {
    return this.used;
  }

  private static split(key: string): [number, number] {
    const d = createHash('sha256').update(key, 'utf8').digest();
    // (0, 0) marks an empty slot, so it is never a fingerprint.
    const hi = d.readUInt32LE(0);
    const lo = d.readUInt32LE(4);
    return hi === 0 && lo === 0 ? [0, 1] : [hi, lo];
  }

  private find(hi: number, lo: number): number {
    const cap = this.slots.length / 2;
    let i = (hi ^ Math.imul(lo, 0x9e3779b1)) >>> 0;
    for (;;) {
      i %= cap;
      const a = this.slots[2 * i]!, b = this.slots[2 * i + 1]!;
      if ((a === 0 && b === 0) || (a === hi && b === lo)) return i;
      i++;
    }
  }

  add(key: string): void {
    const [hi, lo] = FingerprintSet.split(key);
    const i = this.find(hi, lo);
    if (this.slots[2 * i] === hi && this.slots[2 * i + 1] === lo) return;
    this.slots[2 * i] = hi;
    this.slots[2 * i + 1] = lo;
    this.used++;
    if (this.used * 2 > this.slots.length / 2) this.grow();
  }

  has(key: string): boolean {
    const [hi, lo] = FingerprintSet.split(key);
    const i = this.find(hi, lo);
    return this.slots[2 * i] === hi && this.slots[2 * i + 1] === lo;
  }

  private grow(): void {
    const old = this.slots;
    this.slots = new Uint32Array(old.length * 2);
    for (let i = 0; i < old.length; i += 2) {
      const hi = old[i]!, lo = old[i + 1]!;
      if (hi === 0 && lo === 0) continue;
      const j = this.find(hi, lo);
      this.slots[2 * j] = hi;
      this.slots[2 * j + 1] = lo;
    }
  }
}
