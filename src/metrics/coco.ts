// COCO detection metrics with pycocotools' exact semantics (cocodataset/cocoapi PythonAPI/pycocotools/cocoeval.py,
// iouType 'bbox'): per image and category, detections sorted by score (stable) and matched greedily to the best
// unmatched ground truth at each IoU threshold, crowd and ignore handling, 101-point interpolated precision made
// monotone, maxDets; stats = AP, AP50, AP75, AP s/m/l, AR@1/10/100, AR s/m/l, -1 where a setting has no ground truth.

/** [x, y, width, height] in pixels, as COCO writes boxes. */
export type XYWH = [number, number, number, number];

export interface CocoGroundTruth {
  id: number;
  image_id: number;
  category_id: number;
  bbox: XYWH;
  /** COCO's object area (segmentation area in COCO itself); boxes only: width * height when absent. */
  area?: number;
  iscrowd?: number;
  /** Explicit ignore flag (pycocotools keeps it only through iscrowd, see below). */
  ignore?: number;
}

export interface CocoDetection {
  image_id: number;
  category_id: number;
  bbox: XYWH;
  score: number;
}

export interface CocoParams {
  iouThrs: number[];
  recThrs: number[];
  maxDets: number[];
  areaRng: Array<[number, number]>;
  areaRngLbl: string[];
  /** false: categories are ignored (proposal scoring). */
  useCats: boolean;
}

/** pycocotools' defaults for bbox evaluation (Params.setDetParams). */
export function defaultCocoParams(): CocoParams {
  return {
    // np.linspace(.5, 0.95, round((0.95 - .5) / .05) + 1) and np.linspace(.0, 1.00, round(1.00 / .01) + 1)
    iouThrs: linspace(0.5, 0.95, 10),
    recThrs: linspace(0, 1, 101),
    maxDets: [1, 10, 100],
    areaRng: [[0, 1e5 ** 2], [0, 32 ** 2], [32 ** 2, 96 ** 2], [96 ** 2, 1e5 ** 2]],
    areaRngLbl: ['all', 'small', 'medium', 'large'],
    useCats: true,
  };
}

/** numpy.linspace: start + i * step, the last value exactly `stop`. */
function linspace(start: number, stop: number, n: number): number[] {
  const step = (stop - start) / (n - 1);
  return Array.from({ length: n }, (_, i) => (i === n - 1 ? stop : start + i * step));
}

export const COCO_STAT_NAMES = [
  'AP', 'AP50', 'AP75', 'APsmall', 'APmedium', 'APlarge', 'AR1', 'AR10', 'AR100', 'ARsmall', 'ARmedium', 'ARlarge',
] as const;
export type CocoStatName = (typeof COCO_STAT_NAMES)[number];

export interface CocoEvaluation {
  params: CocoParams;
  imgIds: number[];
  catIds: number[];
  /** T x R x K x A x M, row-major; -1 where a category has no ground truth in that setting. */
  precision: Float64Array;
  /** T x K x A x M; -1 likewise. */
  recall: Float64Array;
  /** The 12 summary numbers of COCOeval.summarize(), by name (stats[0..11]). */
  stats: Record<CocoStatName, number>;
}

/** Internal ground truth with what evaluation derives (pycocotools mutates the dicts the same way). */
interface Gt {
  id: number;
  bbox: XYWH;
  area: number;
  iscrowd: boolean;
  ignore: boolean;
}

interface Dt {
  id: number;
  bbox: XYWH;
  area: number;
  score: number;
}

interface EvalImg {
  dtScores: number[];
  /** T x D: matched ground-truth id or 0. */
  dtMatches: Float64Array;
  /** T x D. */
  dtIgnore: Uint8Array;
  gtIgnore: Uint8Array;
  D: number;
}

/**
 * IoU of each detection with each ground truth (maskUtils.iou for boxes): D x G, row-major. For a crowd ground truth
 * the union is the detection's own area (a detection inside a crowd region matches it).
 */
export function boxIou(dts: readonly XYWH[], gts: readonly XYWH[], crowd: readonly boolean[]): Float64Array {
  const out = new Float64Array(dts.length * gts.length);
  for (let g = 0; g < gts.length; g++) {
    const [gx, gy, gw, gh] = gts[g]!;
    const ga = gw * gh;
    for (let d = 0; d < dts.length; d++) {
      const [dx, dy, dw, dh] = dts[d]!;
      const iw = Math.min(dx + dw, gx + gw) - Math.max(dx, gx);
      if (iw <= 0) continue;
      const ih = Math.min(dy + dh, gy + gh) - Math.max(dy, gy);
      if (ih <= 0) continue;
      const inter = iw * ih;
      const union = crowd[g] ? dw * dh : dw * dh + ga - inter;
      out[d * gts.length + g] = inter / union;
    }
  }
  return out;
}

/** Indices of `values` sorted ascending by `key`, ties in original order (numpy argsort kind='mergesort'). */
function stableOrder<T>(values: readonly T[], key: (v: T) => number): number[] {
  return values.map((_, i) => i).sort((a, b) => key(values[a]!) - key(values[b]!) || a - b);
}

function evaluateImg(gtAll: Gt[], dtSorted: Dt[], ious: Float64Array, aRng: [number, number], maxDet: number, p: CocoParams): EvalImg | undefined {
  if (gtAll.length === 0 && dtSorted.length === 0) return undefined;
  const G = gtAll.length;
  const ign = gtAll.map((g) => (g.ignore || g.area < aRng[0] || g.area > aRng[1] ? 1 : 0));
  // Ground truth: ignored last (stable); detections: the precomputed score order, at most maxDet.
  const gtind = stableOrder(ign, (v) => v);
  const gt = gtind.map((i) => gtAll[i]!);
  const gtIgnore = Uint8Array.from(gtind, (i) => ign[i]!);
  const dt = dtSorted.slice(0, maxDet);
  const D = dt.length;
  const T = p.iouThrs.length;
  const gtm = new Float64Array(T * G);
  const dtm = new Float64Array(T * D);
  const dtIg = new Uint8Array(T * D);
  const G0 = G; // ious are D0 x G over the original gt order
  if (ious.length > 0) {
    for (let t = 0; t < T; t++) {
      for (let d = 0; d < D; d++) {
        let iou = Math.min(p.iouThrs[t]!, 1 - 1e-10);
        let m = -1;
        for (let g = 0; g < G; g++) {
          if (gtm[t * G + g]! > 0 && !gt[g]!.iscrowd) continue;
          if (m > -1 && gtIgnore[m] === 0 && gtIgnore[g] === 1) break;
          const v = ious[d * G0 + gtind[g]!]!;
          if (v < iou) continue;
          iou = v;
          m = g;
        }
        if (m === -1) continue;
        dtIg[t * D + d] = gtIgnore[m]!;
        dtm[t * D + d] = gt[m]!.id;
        gtm[t * G + m] = dt[d]!.id;
      }
    }
  }
  // Unmatched detections outside the area range are ignored.
  for (let d = 0; d < D; d++) {
    const out = dt[d]!.area < aRng[0] || dt[d]!.area > aRng[1];
    if (!out) continue;
    for (let t = 0; t < T; t++) if (dtm[t * D + d] === 0) dtIg[t * D + d] = 1;
  }
  return { dtScores: dt.map((x) => x.score), dtMatches: dtm, dtIgnore: dtIg, gtIgnore, D };
}

/** First index i with sorted[i] >= v (numpy.searchsorted side='left'). */
function searchLeft(sorted: Float64Array, v: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** numpy's np.spacing(1): the gap between 1 and the next double. */
const EPS = Number.EPSILON;

/**
 * Evaluate detections against ground truth on the given images and categories, exactly as COCOeval(gt, dt, 'bbox')
 * .evaluate(); .accumulate(); .summarize() does. Every image of `imgIds` counts, also those without any box.
 */
export function evaluateCoco(input: { imgIds: number[]; catIds: number[]; gts: CocoGroundTruth[]; dts: CocoDetection[] }, params: CocoParams = defaultCocoParams()): CocoEvaluation {
  const p = params;
  const imgIds = [...new Set(input.imgIds)].sort((a, b) => a - b);
  const catIds = p.useCats ? [...new Set(input.catIds)].sort((a, b) => a - b) : [-1];
  const maxDets = [...p.maxDets].sort((a, b) => a - b);
  const imgSet = new Set(imgIds);
  const catSet = new Set(input.catIds);
  const key = (img: number, cat: number) => `${img}\u0000${p.useCats ? cat : -1}`;
  const gts = new Map<string, Gt[]>();
  const dts = new Map<string, Dt[]>();
  for (const g of input.gts) {
    if (!imgSet.has(g.image_id) || (p.useCats && !catSet.has(g.category_id))) continue;
    const k = key(g.image_id, g.category_id);
    // pycocotools: gt['ignore'] is overwritten by iscrowd (an explicit ignore alone does not survive _prepare).
    const iscrowd = Boolean(g.iscrowd);
    (gts.get(k) ?? gts.set(k, []).get(k)!).push({ id: g.id, bbox: g.bbox, area: g.area ?? g.bbox[2] * g.bbox[3], iscrowd, ignore: iscrowd });
  }
  input.dts.forEach((d, i) => {
    if (!imgSet.has(d.image_id) || (p.useCats && !catSet.has(d.category_id))) return;
    const k = key(d.image_id, d.category_id);
    // loadRes: ids 1..N in file order, area = w * h.
    (dts.get(k) ?? dts.set(k, []).get(k)!).push({ id: i + 1, bbox: d.bbox, area: d.bbox[2] * d.bbox[3], score: d.score });
  });

  const T = p.iouThrs.length;
  const R = p.recThrs.length;
  const K = catIds.length;
  const A = p.areaRng.length;
  const M = maxDets.length;
  const I = imgIds.length;
  const maxDet = maxDets[M - 1]!;

  // Per (image, category): detections in score order (at most maxDet) and their IoUs with the ground truth.
  const evalImgs: Array<EvalImg | undefined> = new Array(K * A * I);
  for (let k = 0; k < K; k++) {
    for (let i = 0; i < I; i++) {
      const kk = key(imgIds[i]!, catIds[k]!);
      const gt = gts.get(kk) ?? [];
      const dtAll = dts.get(kk) ?? [];
      const dt = stableOrder(dtAll, (d) => -d.score).slice(0, maxDet).map((j) => dtAll[j]!);
      const ious = gt.length && dt.length ? boxIou(dt.map((d) => d.bbox), gt.map((g) => g.bbox), gt.map((g) => g.iscrowd)) : new Float64Array(0);
      for (let a = 0; a < A; a++) evalImgs[k * A * I + a * I + i] = evaluateImg(gt, dt, ious, p.areaRng[a]!, maxDet, p);
    }
  }

  const precision = new Float64Array(T * R * K * A * M).fill(-1);
  const recall = new Float64Array(T * K * A * M).fill(-1);
  for (let k = 0; k < K; k++) {
    for (let a = 0; a < A; a++) {
      const E = evalImgs.slice(k * A * I + a * I, k * A * I + a * I + I).filter((e): e is EvalImg => e !== undefined);
      if (!E.length) continue;
      const npig = E.reduce((s, e) => s + e.gtIgnore.reduce((c, v) => c + (v === 0 ? 1 : 0), 0), 0);
      if (npig === 0) continue;
      for (let m = 0; m < M; m++) {
        const md = maxDets[m]!;
        // Detections of every image (first md of each), in score order across images (stable).
        const scores: number[] = [];
        const src: Array<{ e: EvalImg; d: number }> = [];
        for (const e of E) {
          for (let d = 0; d < Math.min(md, e.D); d++) {
            scores.push(e.dtScores[d]!);
            src.push({ e, d });
          }
        }
        const order = stableOrder(scores, (s) => -s);
        const nd = order.length;
        for (let t = 0; t < T; t++) {
          const rc = new Float64Array(nd);
          const pr = new Float64Array(nd);
          let tp = 0;
          let fp = 0;
          for (let j = 0; j < nd; j++) {
            const { e, d } = src[order[j]!]!;
            const matched = e.dtMatches[t * e.D + d]! !== 0;
            const ignored = e.dtIgnore[t * e.D + d]! !== 0;
            if (matched && !ignored) tp++;
            if (!matched && !ignored) fp++;
            rc[j] = tp / npig;
            pr[j] = tp / (fp + tp + EPS);
          }
          recall[((t * K + k) * A + a) * M + m] = nd ? rc[nd - 1]! : 0;
          for (let j = nd - 1; j > 0; j--) if (pr[j]! > pr[j - 1]!) pr[j - 1] = pr[j]!;
          for (let r = 0; r < R; r++) {
            const at = searchLeft(rc, p.recThrs[r]!);
            precision[(((t * R + r) * K + k) * A + a) * M + m] = at < nd ? pr[at]! : 0;
          }
        }
      }
    }
  }
  const result: CocoEvaluation = { params: p, imgIds, catIds, precision, recall, stats: {} as Record<CocoStatName, number> };
  result.stats = summarize(result);
  return result;
}

/** Mean of the entries > -1, or -1 when there are none (COCOeval.summarize's _summarize). */
function meanValid(values: Iterable<number>): number {
  let sum = 0;
  let n = 0;
  for (const v of values) {
    if (v > -1) {
      sum += v;
      n++;
    }
  }
  return n ? sum / n : -1;
}

export interface CocoSelection {
  /** Average precision (true) or recall (false). */
  ap: boolean;
  iouThr?: number;
  areaRng?: string;
  maxDets?: number;
  /** One category's index in catIds (default: all). */
  k?: number;
}

/** One summary number: AP or AR averaged over IoU thresholds (or at one), recall thresholds and categories. */
export function cocoSummary(ev: CocoEvaluation, sel: CocoSelection): number {
  const p = ev.params;
  const R = p.recThrs.length;
  const K = ev.catIds.length;
  const A = p.areaRng.length;
  const M = p.maxDets.length;
  const a = p.areaRngLbl.indexOf(sel.areaRng ?? 'all');
  const m = [...p.maxDets].sort((x, y) => x - y).indexOf(sel.maxDets ?? 100);
  if (a < 0 || m < 0) return -1;
  const ts = sel.iouThr === undefined ? [...p.iouThrs.keys()] : p.iouThrs.flatMap((v, i) => (Math.abs(v - sel.iouThr!) < 1e-12 ? [i] : []));
  const ks = sel.k === undefined ? [...Array(K).keys()] : [sel.k];
  const values: number[] = [];
  for (const t of ts) {
    for (const k of ks) {
      if (sel.ap) for (let r = 0; r < R; r++) values.push(ev.precision[(((t * R + r) * K + k) * A + a) * M + m]!);
      else values.push(ev.recall[((t * K + k) * A + a) * M + m]!);
    }
  }
  return meanValid(values);
}

function summarize(ev: CocoEvaluation): Record<CocoStatName, number> {
  const md = [...ev.params.maxDets].sort((a, b) => a - b);
  const last = md[md.length - 1]!;
  const s = (sel: CocoSelection) => cocoSummary(ev, sel);
  return {
    AP: s({ ap: true, maxDets: last }),
    AP50: s({ ap: true, iouThr: 0.5, maxDets: last }),
    AP75: s({ ap: true, iouThr: 0.75, maxDets: last }),
    APsmall: s({ ap: true, areaRng: 'small', maxDets: last }),
    APmedium: s({ ap: true, areaRng: 'medium', maxDets: last }),
    APlarge: s({ ap: true, areaRng: 'large', maxDets: last }),
    AR1: s({ ap: false, maxDets: md[0] }),
    AR10: s({ ap: false, maxDets: md[1] }),
    AR100: s({ ap: false, maxDets: last }),
    ARsmall: s({ ap: false, areaRng: 'small', maxDets: last }),
    ARmedium: s({ ap: false, areaRng: 'medium', maxDets: last }),
    ARlarge: s({ ap: false, areaRng: 'large', maxDets: last }),
  };
}

/** Per category: AP, AP50, AP75, AR@100 (the 'all' area range, most detections), -1 without ground truth. */
export function cocoPerCategory(ev: CocoEvaluation): Array<{ categoryId: number; AP: number; AP50: number; AP75: number; AR100: number }> {
  const last = Math.max(...ev.params.maxDets);
  return ev.catIds.map((categoryId, k) => ({
    categoryId,
    AP: cocoSummary(ev, { ap: true, k, maxDets: last }),
    AP50: cocoSummary(ev, { ap: true, k, iouThr: 0.5, maxDets: last }),
    AP75: cocoSummary(ev, { ap: true, k, iouThr: 0.75, maxDets: last }),
    AR100: cocoSummary(ev, { ap: false, k, maxDets: last }),
  }));
}

/**
 * The interpolated precision at each recall threshold for one IoU threshold (default 0.5), one category or the mean
 * over categories with ground truth (plotCocoPRCurve's curve), area 'all', most detections.
 */
export function cocoPrCurve(ev: CocoEvaluation, opts: { iouThr?: number; k?: number } = {}): Array<{ recall: number; precision: number }> {
  const p = ev.params;
  const R = p.recThrs.length;
  const K = ev.catIds.length;
  const A = p.areaRng.length;
  const M = p.maxDets.length;
  const t = p.iouThrs.findIndex((v) => Math.abs(v - (opts.iouThr ?? 0.5)) < 1e-12);
  if (t < 0) return [];
  return p.recThrs.map((recall, r) => {
    const ks = opts.k === undefined ? [...Array(K).keys()] : [opts.k];
    return { recall, precision: meanValid(ks.map((k) => ev.precision[(((t * R + r) * K + k) * A + 0) * M + (M - 1)]!)) };
  });
}
