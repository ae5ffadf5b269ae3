;; Dot products for the classic solvers' kernel rows, in WebAssembly SIMD (f32x4): the data rows live in the
;; imported memory as float32, zero-padded to a multiple of 4 floats. Assembled into kernel-wasm.ts by
;; `npx tsx scripts/wasm-kernels.ts` (test/classic-solvers.test.ts fails when the two drift apart).
(module
  (import "env" "mem" (memory 1 65536))

  ;; out[t - start] (f64) = <v, row perm[t]> for t in [start, end). v: `stride` bytes at $v; rows: `stride` bytes
  ;; each from $data; perm: i32 row numbers; stride a multiple of 16. Four independent f32x4 accumulators (16
  ;; partial sums) keep the adds from waiting on each other; the partial sums are added in f64.
  (func (export "dots") (param $v i32) (param $data i32) (param $perm i32) (param $start i32) (param $end i32) (param $stride i32) (param $out i32)
    (local $t i32) (local $row i32) (local $k i32) (local $a i32) (local $end64 i32)
    (local $s0 v128) (local $s1 v128) (local $s2 v128) (local $s3 v128)
    (local.set $end64 (i32.and (local.get $stride) (i32.const -64)))
    (local.set $t (local.get $start))
    (block $done (loop $rows
      (br_if $done (i32.ge_s (local.get $t) (local.get $end)))
      (local.set $row (i32.add (local.get $data)
        (i32.mul (i32.load (i32.add (local.get $perm) (i32.shl (local.get $t) (i32.const 2)))) (local.get $stride))))
      (local.set $s0 (v128.const i32x4 0 0 0 0))
      (local.set $s1 (v128.const i32x4 0 0 0 0))
      (local.set $s2 (v128.const i32x4 0 0 0 0))
      (local.set $s3 (v128.const i32x4 0 0 0 0))
      (local.set $k (i32.const 0))
      (block $b64 (loop $l64
        (br_if $b64 (i32.ge_u (local.get $k) (local.get $end64)))
        (local.set $a (i32.add (local.get $row) (local.get $k)))
        (local.set $s0 (f32x4.add (local.get $s0) (f32x4.mul
          (v128.load offset=0 (i32.add (local.get $v) (local.get $k))) (v128.load offset=0 (local.get $a)))))
        (local.set $s1 (f32x4.add (local.get $s1) (f32x4.mul
          (v128.load offset=16 (i32.add (local.get $v) (local.get $k))) (v128.load offset=16 (local.get $a)))))
        (local.set $s2 (f32x4.add (local.get $s2) (f32x4.mul
          (v128.load offset=32 (i32.add (local.get $v) (local.get $k))) (v128.load offset=32 (local.get $a)))))
        (local.set $s3 (f32x4.add (local.get $s3) (f32x4.mul
          (v128.load offset=48 (i32.add (local.get $v) (local.get $k))) (v128.load offset=48 (local.get $a)))))
        (local.set $k (i32.add (local.get $k) (i32.const 64)))
        (br $l64)))
      (block $b16 (loop $l16
        (br_if $b16 (i32.ge_u (local.get $k) (local.get $stride)))
        (local.set $s0 (f32x4.add (local.get $s0) (f32x4.mul
          (v128.load (i32.add (local.get $v) (local.get $k))) (v128.load (i32.add (local.get $row) (local.get $k))))))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $l16)))
      (local.set $s0 (f32x4.add (f32x4.add (local.get $s0) (local.get $s1)) (f32x4.add (local.get $s2) (local.get $s3))))
      (f64.store (i32.add (local.get $out) (i32.shl (i32.sub (local.get $t) (local.get $start)) (i32.const 3)))
        (f64.add
          (f64.add (f64.promote_f32 (f32x4.extract_lane 0 (local.get $s0))) (f64.promote_f32 (f32x4.extract_lane 1 (local.get $s0))))
          (f64.add (f64.promote_f32 (f32x4.extract_lane 2 (local.get $s0))) (f64.promote_f32 (f32x4.extract_lane 3 (local.get $s0))))))
      (local.set $t (i32.add (local.get $t) (i32.const 1)))
      (br $rows)))
  )

  ;; Logistic regression, forward: z[i*k + c] (f64) = <x_i, w_c> for i < rows, c < k. x: rows of `stride` bytes;
  ;; w: k rows of `stride` bytes. Two rows and four classes at a time: eight accumulators, and each vector loaded
  ;; serves two or four multiply-adds. `rows` even and the class count padded to a multiple of 4 (zero rows in w).
  (func (export "gemm_xwt") (param $x i32) (param $rows i32) (param $stride i32) (param $w i32) (param $k i32) (param $z i32)
    (local $i i32) (local $c i32) (local $j i32) (local $p i32) (local $q i32) (local $w0 i32) (local $w1 i32) (local $w2 i32) (local $w3 i32)
    (local $zo i32) (local $kk i32) (local $xv v128) (local $yv v128) (local $wv v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $b0 v128) (local $b1 v128) (local $b2 v128) (local $b3 v128)
    (local.set $kk (i32.and (i32.add (local.get $k) (i32.const 3)) (i32.const -4)))
    (local.set $i (i32.const 0))
    (block $done (loop $rowl
      (br_if $done (i32.ge_u (local.get $i) (local.get $rows)))
      (local.set $c (i32.const 0))
      (block $cdone (loop $cl
        (br_if $cdone (i32.ge_u (local.get $c) (local.get $kk)))
        (local.set $w0 (i32.add (local.get $w) (i32.mul (local.get $c) (local.get $stride))))
        (local.set $w1 (i32.add (local.get $w0) (local.get $stride)))
        (local.set $w2 (i32.add (local.get $w1) (local.get $stride)))
        (local.set $w3 (i32.add (local.get $w2) (local.get $stride)))
        (local.set $p (i32.add (local.get $x) (i32.mul (local.get $i) (local.get $stride))))
        (local.set $q (i32.add (local.get $p) (local.get $stride)))
        (local.set $a0 (v128.const i32x4 0 0 0 0)) (local.set $b0 (v128.const i32x4 0 0 0 0))
        (local.set $a1 (v128.const i32x4 0 0 0 0)) (local.set $b1 (v128.const i32x4 0 0 0 0))
        (local.set $a2 (v128.const i32x4 0 0 0 0)) (local.set $b2 (v128.const i32x4 0 0 0 0))
        (local.set $a3 (v128.const i32x4 0 0 0 0)) (local.set $b3 (v128.const i32x4 0 0 0 0))
        (local.set $j (i32.const 0))
        (block $jd (loop $jl
          (br_if $jd (i32.ge_u (local.get $j) (local.get $stride)))
          (local.set $xv (v128.load (i32.add (local.get $p) (local.get $j))))
          (local.set $yv (v128.load (i32.add (local.get $q) (local.get $j))))
          (local.set $wv (v128.load (i32.add (local.get $w0) (local.get $j))))
          (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $xv) (local.get $wv))))
          (local.set $b0 (f32x4.add (local.get $b0) (f32x4.mul (local.get $yv) (local.get $wv))))
          (local.set $wv (v128.load (i32.add (local.get $w1) (local.get $j))))
          (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $xv) (local.get $wv))))
          (local.set $b1 (f32x4.add (local.get $b1) (f32x4.mul (local.get $yv) (local.get $wv))))
          (local.set $wv (v128.load (i32.add (local.get $w2) (local.get $j))))
          (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $xv) (local.get $wv))))
          (local.set $b2 (f32x4.add (local.get $b2) (f32x4.mul (local.get $yv) (local.get $wv))))
          (local.set $wv (v128.load (i32.add (local.get $w3) (local.get $j))))
          (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $xv) (local.get $wv))))
          (local.set $b3 (f32x4.add (local.get $b3) (f32x4.mul (local.get $yv) (local.get $wv))))
          (local.set $j (i32.add (local.get $j) (i32.const 16)))
          (br $jl)))
        (local.set $zo (i32.add (local.get $z) (i32.shl (i32.add (i32.mul (local.get $i) (local.get $kk)) (local.get $c)) (i32.const 3))))
        (f64.store offset=0 (local.get $zo) (call $hsum (local.get $a0)))
        (f64.store offset=8 (local.get $zo) (call $hsum (local.get $a1)))
        (f64.store offset=16 (local.get $zo) (call $hsum (local.get $a2)))
        (f64.store offset=24 (local.get $zo) (call $hsum (local.get $a3)))
        (local.set $zo (i32.add (local.get $zo) (i32.shl (local.get $kk) (i32.const 3))))
        (f64.store offset=0 (local.get $zo) (call $hsum (local.get $b0)))
        (f64.store offset=8 (local.get $zo) (call $hsum (local.get $b1)))
        (f64.store offset=16 (local.get $zo) (call $hsum (local.get $b2)))
        (f64.store offset=24 (local.get $zo) (call $hsum (local.get $b3)))
        (local.set $c (i32.add (local.get $c) (i32.const 4)))
        (br $cl)))
      (local.set $i (i32.add (local.get $i) (i32.const 2)))
      (br $rowl)))
  )

  ;; Logistic regression, backward: g[c*stride + j] (f32) += sum over i < rows of e[i*k + c] * x_i[j]. e: rows x k
  ;; f32. Four classes and eight features at a time in registers, over all rows (a block small enough for L2).
  (func (export "gemm_etx") (param $x i32) (param $rows i32) (param $stride i32) (param $e i32) (param $k i32) (param $g i32)
    (local $i i32) (local $c i32) (local $j i32) (local $xp i32) (local $ep i32) (local $g0 i32) (local $ke i32)
    (local $x0 v128) (local $x1 v128) (local $e0 v128) (local $e1 v128) (local $e2 v128) (local $e3 v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $b0 v128) (local $b1 v128) (local $b2 v128) (local $b3 v128)
    (local.set $ke (i32.shl (local.get $k) (i32.const 2)))
    (local.set $c (i32.const 0))
    (block $cdone (loop $cl
      (br_if $cdone (i32.ge_u (local.get $c) (local.get $k)))
      (local.set $j (i32.const 0))
      (block $jd (loop $jl
        (br_if $jd (i32.ge_u (local.get $j) (local.get $stride)))
        (local.set $g0 (i32.add (i32.add (local.get $g) (i32.mul (local.get $c) (local.get $stride))) (local.get $j)))
        (local.set $a0 (v128.const i32x4 0 0 0 0)) (local.set $b0 (v128.const i32x4 0 0 0 0))
        (local.set $a1 (v128.const i32x4 0 0 0 0)) (local.set $b1 (v128.const i32x4 0 0 0 0))
        (local.set $a2 (v128.const i32x4 0 0 0 0)) (local.set $b2 (v128.const i32x4 0 0 0 0))
        (local.set $a3 (v128.const i32x4 0 0 0 0)) (local.set $b3 (v128.const i32x4 0 0 0 0))
        (local.set $xp (i32.add (local.get $x) (local.get $j)))
        (local.set $ep (i32.add (local.get $e) (i32.shl (local.get $c) (i32.const 2))))
        (local.set $i (i32.const 0))
        (block $id (loop $il
          (br_if $id (i32.ge_u (local.get $i) (local.get $rows)))
          (local.set $x0 (v128.load offset=0 (local.get $xp)))
          (local.set $x1 (v128.load offset=16 (local.get $xp)))
          (local.set $e0 (v128.load32_splat offset=0 (local.get $ep)))
          (local.set $e1 (v128.load32_splat offset=4 (local.get $ep)))
          (local.set $e2 (v128.load32_splat offset=8 (local.get $ep)))
          (local.set $e3 (v128.load32_splat offset=12 (local.get $ep)))
          (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $e0) (local.get $x0))))
          (local.set $b0 (f32x4.add (local.get $b0) (f32x4.mul (local.get $e0) (local.get $x1))))
          (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $e1) (local.get $x0))))
          (local.set $b1 (f32x4.add (local.get $b1) (f32x4.mul (local.get $e1) (local.get $x1))))
          (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $e2) (local.get $x0))))
          (local.set $b2 (f32x4.add (local.get $b2) (f32x4.mul (local.get $e2) (local.get $x1))))
          (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $e3) (local.get $x0))))
          (local.set $b3 (f32x4.add (local.get $b3) (f32x4.mul (local.get $e3) (local.get $x1))))
          (local.set $xp (i32.add (local.get $xp) (local.get $stride)))
          (local.set $ep (i32.add (local.get $ep) (local.get $ke)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $il)))
        (call $acc (local.get $g0) (local.get $a0) (local.get $b0))
        (if (i32.lt_u (i32.add (local.get $c) (i32.const 1)) (local.get $k)) (then
          (call $acc (i32.add (local.get $g0) (local.get $stride)) (local.get $a1) (local.get $b1))))
        (if (i32.lt_u (i32.add (local.get $c) (i32.const 2)) (local.get $k)) (then
          (call $acc (i32.add (local.get $g0) (i32.shl (local.get $stride) (i32.const 1))) (local.get $a2) (local.get $b2))))
        (if (i32.lt_u (i32.add (local.get $c) (i32.const 3)) (local.get $k)) (then
          (call $acc (i32.add (local.get $g0) (i32.mul (local.get $stride) (i32.const 3))) (local.get $a3) (local.get $b3))))
        (local.set $j (i32.add (local.get $j) (i32.const 32)))
        (br $jl)))
      (local.set $c (i32.add (local.get $c) (i32.const 4)))
      (br $cl)))
  )

  ;; g[0..8) += (a, b)
  (func $acc (param $g i32) (param $a v128) (param $b v128)
    (v128.store offset=0 (local.get $g) (f32x4.add (v128.load offset=0 (local.get $g)) (local.get $a)))
    (v128.store offset=16 (local.get $g) (f32x4.add (v128.load offset=16 (local.get $g)) (local.get $b))))

  ;; The four lanes of an f32x4, added in f64.
  (func $hsum (param $s v128) (result f64)
    (f64.add
      (f64.add (f64.promote_f32 (f32x4.extract_lane 0 (local.get $s))) (f64.promote_f32 (f32x4.extract_lane 1 (local.get $s))))
      (f64.add (f64.promote_f32 (f32x4.extract_lane 2 (local.get $s))) (f64.promote_f32 (f32x4.extract_lane 3 (local.get $s))))))
)
