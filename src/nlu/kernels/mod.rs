//! The int8 encoder's compute kernels: the only module of the crate allowed `unsafe`.
//!
//! Why `unsafe` here: the encoder's time is one int8 matrix product per linear layer, and the
//! instruction that makes it fast (AVX-512 VNNI `vpdpbusd`, 64 multiply-adds of u8 × i8 at once)
//! is reachable only through `core::arch` intrinsics, which need `unsafe` and a runtime CPU
//! check. Everything else here (GELU, softmax, LayerNorm, activation quantisation) is ordinary
//! safe Rust, compiled twice: once plainly and once inside a `#[target_feature]` wrapper so the
//! compiler vectorises it with AVX-512. Every entry point picks its path from [`level`] (detected
//! once), and every fast path is tested against the plain one below.
//!
//! Numerics: weights are quantised symmetrically to i8 per output row and per block of [`KB`]
//! inputs; activations per token row and per block, to u8 with an offset of 128 (VNNI multiplies
//! unsigned by signed bytes). The offset's contribution, `128 × Σ w`, is precomputed per block
//! and subtracted, so the integer sums are exact and only the two roundings remain.

#![allow(unsafe_code)]

#[cfg(target_arch = "x86_64")]
mod amx;

use std::sync::OnceLock;

/// Inputs per quantisation block (one scale per block of a weight row and of a token row).
pub const KB: usize = 64;
/// Output columns per packed panel: one 512-bit register of i32 lanes.
const NR: usize = 16;
/// Panels computed together by the matrix kernel (64 output columns).
const NV: usize = 4;
/// Token rows of one AMX tile: [`quantize_rows`] pads its rows to a multiple of this.
const ROW_TILE: usize = 16;

/// Which code path the kernels take on this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Plain Rust, any CPU.
    Scalar,
    /// AVX-512 (F, BW, VL) with VNNI int8 dot products.
    Avx512Vnni,
    /// AVX-512 VNNI, and AMX int8 tiles for the matrix product ([`amx`]).
    Avx512Amx,
}

impl Level {
    /// Whether the AVX-512 paths (every kernel but the matrix product) apply.
    fn avx512(self) -> bool {
        matches!(self, Level::Avx512Vnni | Level::Avx512Amx)
    }
}

/// The fastest path this CPU supports, detected once.
pub fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| match std::env::var("SWITCHBOARD_KERNELS").as_deref() {
        Ok("scalar") => Level::Scalar,
        Ok("vnni") => match detect() {
            Level::Avx512Amx => Level::Avx512Vnni,
            other => other,
        },
        _ => detect(),
    })
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Level {
    if is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512vnni")
        && is_x86_feature_detected!("fma")
    {
        if amx::available() {
            Level::Avx512Amx
        } else {
            Level::Avx512Vnni
        }
    } else {
        Level::Scalar
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Level {
    Level::Scalar
}

/// A weight matrix `(n outputs × k inputs)` quantised to i8 and laid out for the kernel, with
/// its bias.
pub struct PackedMatrix {
    n: usize,
    k: usize,
    /// `n` rounded up to a whole tile (`NR × NV`).
    n_pad: usize,
    /// `k` rounded up to a whole block ([`KB`]).
    k_pad: usize,
    /// Tile-major, in the order the kernels read it: for each tile of 64 outputs, for each
    /// block of [`KB`] inputs, its 4 panels of 16 outputs, each 16 groups of 4 inputs × 16
    /// outputs × 4 bytes (output lane by lane, its 4 inputs consecutive) — one 1 KB AMX B
    /// tile, or 16 `vpdpbusd` operands; see [`weight_offset`].
    data: Vec<i8>,
    /// Scale per block and output: `[block][n_pad]`.
    scales: Vec<f32>,
    /// `128 × Σ q` per block and output: `[block][n_pad]`.
    comp: Vec<i32>,
    /// Bias, zero-padded to `n_pad`.
    bias: Vec<f32>,
}

impl PackedMatrix {
    /// Quantises a row-major `(n × k)` f32 weight (PyTorch's `out × in` layout) and its bias.
    pub fn pack(weight: &[f32], bias: &[f32], n: usize, k: usize) -> Self {
        assert_eq!(weight.len(), n * k, "weight is not n × k");
        assert_eq!(bias.len(), n, "bias is not n long");
        let tile = NR * NV;
        let n_pad = n.div_ceil(tile) * tile;
        let k_pad = k.div_ceil(KB) * KB;
        let blocks = k_pad / KB;
        let mut data = vec![0i8; n_pad * k_pad];
        let mut scales = vec![0f32; blocks * n_pad];
        let mut comp = vec![0i32; blocks * n_pad];
        for row in 0..n {
            let w = &weight[row * k..(row + 1) * k];
            for b in 0..blocks {
                let lo = b * KB;
                let hi = (lo + KB).min(k);
                let amax = w[lo..hi].iter().fold(0f32, |m, v| m.max(v.abs()));
                let scale = amax / 127.0;
                let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
                let mut sum = 0i32;
                for (j, &v) in w[lo..hi].iter().enumerate() {
                    let q = round_to_i8(v * inv);
                    sum += i32::from(q);
                    data[weight_offset(row, lo + j, k_pad)] = q;
                }
                scales[b * n_pad + row] = scale;
                comp[b * n_pad + row] = 128 * sum;
            }
        }
        let mut padded_bias = bias.to_vec();
        padded_bias.resize(n_pad, 0.0);
        Self {
            n,
            k,
            n_pad,
            k_pad,
            data,
            scales,
            comp,
            bias: padded_bias,
        }
    }

    /// Outputs.
    pub fn rows(&self) -> usize {
        self.n
    }

    /// Inputs.
    pub fn cols(&self) -> usize {
        self.k
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.data.len() + 4 * (self.scales.len() + self.comp.len() + self.bias.len())
    }
}

/// Where output `n`'s weight for input `kk` lies in [`PackedMatrix::data`].
#[inline]
fn weight_offset(n: usize, kk: usize, k_pad: usize) -> usize {
    let (tile, panel, lane) = (n / (NR * NV), (n / NR) % NV, n % NR);
    let (block, group) = (kk / KB, (kk % KB) / 4);
    tile * k_pad * NR * NV
        + block * KB * NR * NV
        + panel * KB * NR
        + group * NR * 4
        + lane * 4
        + kk % 4
}

/// Rounds to the nearest integer (ties to even) in [-127, 127]. Adding and subtracting
/// 1.5 × 2²³ rounds in the FPU's default mode without a call to `rint`, which plain x86-64
/// code (no SSE4.1) makes for `round_ties_even`; it matters when packing millions of weights.
#[inline]
pub fn round_to_i8(x: f32) -> i8 {
    const MAGIC: f32 = 12_582_912.0;
    let x = x.clamp(-127.0, 127.0);
    ((x + MAGIC) - MAGIC) as i8
}

/// Token rows quantised for [`gemm`]: u8 with an offset of 128, one scale per row and block.
#[derive(Default)]
pub struct QuantRows {
    m: usize,
    k_pad: usize,
    data: Vec<u8>,
    scales: Vec<f32>,
}

/// Quantises `m` rows of width `k` (row-major `x`) into `out`, padded to the block size.
pub fn quantize_rows(x: &[f32], m: usize, k: usize, out: &mut QuantRows) {
    assert_eq!(x.len(), m * k, "x is not m × k");
    let k_pad = k.div_ceil(KB) * KB;
    out.m = m;
    out.k_pad = k_pad;
    out.data.clear();
    out.data
        .resize(m.div_ceil(ROW_TILE) * ROW_TILE * k_pad, 128);
    out.scales.clear();
    out.scales.resize(m * (k_pad / KB), 0.0);
    match level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `level` checked that the CPU has the features the wrapper enables.
        l if l.avx512() => unsafe { quantize_avx512(x, k, out) },
        _ => quantize_scalar(x, k, out),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma")]
fn quantize_avx512(x: &[f32], k: usize, out: &mut QuantRows) {
    // SAFETY: the features are enabled on this function; `quantize_rows` sized `out`.
    unsafe { avx512::quantize(x, k, out) }
}

fn quantize_scalar(x: &[f32], k: usize, out: &mut QuantRows) {
    let blocks = out.k_pad / KB;
    for (r, row) in x.chunks_exact(k).enumerate() {
        let dst = &mut out.data[r * out.k_pad..r * out.k_pad + k];
        for b in 0..blocks {
            let lo = b * KB;
            let hi = (lo + KB).min(k);
            let src = &row[lo..hi];
            let amax = max_abs(src);
            let scale = amax / 127.0;
            let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
            for (d, &v) in dst[lo..hi].iter_mut().zip(src) {
                // |v × inv| ≤ 127 by construction, so the cast never saturates.
                *d = ((v * inv).round_ties_even() as i32 + 128) as u8;
            }
            out.scales[r * blocks + b] = scale;
        }
    }
}

#[inline(always)]
fn max_abs(v: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let mut chunks = v.chunks_exact(16);
    for c in &mut chunks {
        for (l, x) in lanes.iter_mut().zip(c) {
            *l = l.max(x.abs());
        }
    }
    let mut m = chunks.remainder().iter().fold(0f32, |m, x| m.max(x.abs()));
    for l in lanes {
        m = m.max(l);
    }
    m
}

/// `out (m × n) = x · Wᵀ + bias` for quantised rows `x` and a packed `W`.
pub fn gemm(x: &QuantRows, w: &PackedMatrix, out: &mut [f32]) {
    assert_eq!(x.k_pad, w.k_pad, "input width does not match the matrix");
    assert_eq!(out.len(), x.m * w.n, "output is not m × n");
    if w.n_pad == w.n {
        gemm_padded(x, w, out);
    } else {
        let mut tmp = vec![0f32; x.m * w.n_pad];
        gemm_padded(x, w, &mut tmp);
        for (dst, src) in out.chunks_exact_mut(w.n).zip(tmp.chunks_exact(w.n_pad)) {
            dst.copy_from_slice(&src[..w.n]);
        }
    }
}

fn gemm_padded(x: &QuantRows, w: &PackedMatrix, out: &mut [f32]) {
    match level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `level` checked the CPU features (and the OS's tile permission); shapes
        // were checked by `gemm`, and `quantize_rows` padded the rows to whole tiles.
        Level::Avx512Amx => unsafe { amx::gemm(x, w, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Level::Avx512Vnni => unsafe { avx512::gemm(x, w, out) },
        _ => gemm_scalar(x, w, out),
    }
}

/// The reference path: the same blocks, integer sums and scale order as the SIMD kernel.
fn gemm_scalar(x: &QuantRows, w: &PackedMatrix, out: &mut [f32]) {
    let blocks = w.k_pad / KB;
    for (i, o) in out.chunks_exact_mut(w.n_pad).enumerate() {
        o.copy_from_slice(&w.bias);
        let a = &x.data[i * x.k_pad..(i + 1) * x.k_pad];
        for b in 0..blocks {
            let sa = x.scales[i * blocks + b];
            for (n, o) in o.iter_mut().enumerate() {
                let mut acc = 0i32;
                for (kk, &av) in a.iter().enumerate().skip(b * KB).take(KB) {
                    let q = w.data[weight_offset(n, kk, w.k_pad)];
                    acc += i32::from(av) * i32::from(q);
                }
                let sw = w.scales[b * w.n_pad + n];
                *o = ((acc - w.comp[b * w.n_pad + n]) as f32).mul_add(sw * sa, *o);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{KB, NR, NV, PackedMatrix, QuantRows};
    use core::arch::x86_64::*;

    /// Token rows computed together (4 × 4 accumulator registers).
    const MR: usize = 4;
    /// Token rows whose output tile is kept hot while the kernel walks the blocks of K.
    const MC: usize = 48;

    /// Tiles of 64 outputs; within one, chunks of `MC` rows; within those, blocks of `KB`
    /// inputs, so a block of weights (4 KB) stays in L1 while every row tile uses it.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma")]
    pub(super) unsafe fn gemm(x: &QuantRows, w: &PackedMatrix, out: &mut [f32]) {
        let blocks = w.k_pad / KB;
        let m = x.m;
        for nt in (0..w.n_pad).step_by(NR * NV) {
            for mc in (0..m).step_by(MC) {
                let mend = (mc + MC).min(m);
                for i in mc..mend {
                    out[i * w.n_pad + nt..i * w.n_pad + nt + NR * NV]
                        .copy_from_slice(&w.bias[nt..nt + NR * NV]);
                }
                for b in 0..blocks {
                    let mut i = mc;
                    while i + MR <= mend {
                        // SAFETY: rows i..i+MR, block b and columns nt..nt+64 are in bounds.
                        unsafe { tile::<MR>(x, w, out, i, b, nt) };
                        i += MR;
                    }
                    // SAFETY: as above, for the remaining rows.
                    unsafe {
                        match mend - i {
                            3 => tile::<3>(x, w, out, i, b, nt),
                            2 => tile::<2>(x, w, out, i, b, nt),
                            1 => tile::<1>(x, w, out, i, b, nt),
                            _ => {}
                        }
                    }
                }
            }
        }
    }

    /// `R` rows × 64 outputs over one block of `KB` inputs, added into `out`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma")]
    unsafe fn tile<const R: usize>(
        x: &QuantRows,
        w: &PackedMatrix,
        out: &mut [f32],
        row: usize,
        block: usize,
        nt: usize,
    ) {
        let blocks = w.k_pad / KB;
        let panel_stride = KB * NR;
        // SAFETY (whole body): the caller guarantees row + R ≤ m, block < blocks and
        // nt + 64 ≤ n_pad; every pointer below stays inside the slices it is derived from.
        unsafe {
            let wp = w.data.as_ptr().add(nt * w.k_pad + block * KB * NR * NV);
            let ap = x.data.as_ptr().add(row * x.k_pad + block * KB);
            let mut acc = [[_mm512_setzero_si512(); NV]; R];
            for g in 0..KB / 4 {
                let mut wv = [_mm512_setzero_si512(); NV];
                for (v, wv) in wv.iter_mut().enumerate() {
                    *wv = _mm512_loadu_si512(wp.add(v * panel_stride + g * 64).cast());
                }
                for (r, acc) in acc.iter_mut().enumerate() {
                    let a4 = ap.add(r * x.k_pad + g * 4).cast::<i32>().read_unaligned();
                    let av = _mm512_set1_epi32(a4);
                    for v in 0..NV {
                        acc[v] = _mm512_dpbusd_epi32(acc[v], av, wv[v]);
                    }
                }
            }
            let sp = w.scales.as_ptr().add(block * w.n_pad + nt);
            let cp = w.comp.as_ptr().add(block * w.n_pad + nt);
            for v in 0..NV {
                let sw = _mm512_loadu_ps(sp.add(v * NR));
                let comp = _mm512_loadu_si512(cp.add(v * NR).cast());
                for (r, acc) in acc.iter().enumerate() {
                    let sa = _mm512_set1_ps(*x.scales.get_unchecked((row + r) * blocks + block));
                    let op = out.as_mut_ptr().add((row + r) * w.n_pad + nt + v * NR);
                    let f = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[v], comp));
                    let o = _mm512_fmadd_ps(f, _mm512_mul_ps(sw, sa), _mm512_loadu_ps(op));
                    _mm512_storeu_ps(op, o);
                }
            }
        }
    }
    /// Lanes of a 16-wide vector that hold elements `off..len`.
    #[inline]
    fn mask_for(len: usize, off: usize) -> __mmask16 {
        let n = (len - off).min(16);
        if n == 16 { 0xFFFF } else { (1u16 << n) - 1 }
    }

    /// Per row and block: max |x|, scale, `round(x / scale) + 128` as bytes. The same
    /// arithmetic as the scalar path (nearest-even rounding), so the bytes are identical.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma")]
    pub(super) unsafe fn quantize(x: &[f32], k: usize, out: &mut QuantRows) {
        let blocks = out.k_pad / KB;
        let off128 = _mm512_set1_epi32(128);
        for (r, row) in x.chunks_exact(k).enumerate() {
            for b in 0..blocks {
                let lo = b * KB;
                let len = KB.min(k - lo);
                let mut vs = [_mm512_setzero_ps(); KB / 16];
                let mut amax = _mm512_setzero_ps();
                for (v, slot) in vs.iter_mut().enumerate() {
                    let off = v * 16;
                    if off >= len {
                        break;
                    }
                    // SAFETY: the mask keeps the load inside `row[lo..lo + len]`.
                    *slot = unsafe {
                        _mm512_maskz_loadu_ps(mask_for(len, off), row.as_ptr().add(lo + off))
                    };
                    amax = _mm512_max_ps(amax, _mm512_abs_ps(*slot));
                }
                let scale = _mm512_reduce_max_ps(amax) / 127.0;
                let inv = _mm512_set1_ps(if scale > 0.0 { 1.0 / scale } else { 0.0 });
                for (v, slot) in vs.iter().enumerate() {
                    let off = v * 16;
                    if off >= len {
                        break;
                    }
                    let q = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(*slot, inv)), off128);
                    // SAFETY: the mask keeps the store inside this row's `k_pad` bytes.
                    unsafe {
                        _mm512_mask_cvtepi32_storeu_epi8(
                            out.data.as_mut_ptr().add(r * out.k_pad + lo + off).cast(),
                            mask_for(len, off),
                            q,
                        )
                    };
                }
                out.scales[r * blocks + b] = scale;
            }
        }
    }

    /// 16 lanes of `e^x`: the scalar [`super::exp`]'s reduction and polynomial, with fused
    /// multiply-adds.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma")]
    fn exp16(x: __m512) -> __m512 {
        let x = _mm512_min_ps(
            _mm512_max_ps(x, _mm512_set1_ps(-87.0)),
            _mm512_set1_ps(88.0),
        );
        let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
        );
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_4), x);
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.121_944_4e-4), r);
        let mut p = _mm512_set1_ps(1.0 / 720.0);
        for c in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
            p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
        }
        _mm512_scalef_ps(p, n)
    }

    /// 16 lanes of the scalar [`super::erf`].
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma")]
    fn erf16(x: __m512) -> __m512 {
        let a = _mm512_abs_ps(x);
        let one = _mm512_set1_ps(1.0);
        let t = _mm512_div_ps(one, _mm512_fmadd_ps(_mm512_set1_ps(0.327_591_1), a, one));
        let mut p = _mm512_set1_ps(1.061_405_4);
        for c in [-1.453_152_1, 1.421_413_7, -0.284_496_74, 0.254_829_6] {
            p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(c));
        }
        p = _mm512_mul_ps(p, t);
        let e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(a, a)));
        let y = _mm512_fnmadd_ps(p, e, one);
        let negative = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_setzero_ps());
        _mm512_mask_sub_ps(y, negative, _mm512_setzero_ps(), y)
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma")]
    pub(super) unsafe fn gelu(x: &mut [f32]) {
        let len = x.len();
        let half = _mm512_set1_ps(0.5);
        let one = _mm512_set1_ps(1.0);
        let s = _mm512_set1_ps(std::f32::consts::FRAC_1_SQRT_2);
        for off in (0..len).step_by(16) {
            let m = mask_for(len, off);
            // SAFETY: masked to `x[off..len]`.
            unsafe {
                let p = x.as_mut_ptr().add(off);
                let v = _mm512_maskz_loadu_ps(m, p);
                let g = _mm512_mul_ps(
                    _mm512_mul_ps(half, v),
                    _mm512_add_ps(one, erf16(_mm512_mul_ps(v, s))),
                );
                _mm512_mask_storeu_ps(p, m, g);
            }
        }
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma")]
    pub(super) unsafe fn add_layer_norm(
        x: &mut [f32],
        y: Option<&[f32]>,
        gamma: &[f32],
        beta: &[f32],
        eps: f32,
    ) {
        let h = gamma.len();
        for (r, row) in x.chunks_exact_mut(h).enumerate() {
            let p = row.as_mut_ptr();
            // SAFETY (block): every access is masked to `0..h` of this row, of `y`'s row r,
            // or of gamma/beta (h long).
            unsafe {
                let mut acc = _mm512_setzero_ps();
                for off in (0..h).step_by(16) {
                    let m = mask_for(h, off);
                    let mut v = _mm512_maskz_loadu_ps(m, p.add(off));
                    if let Some(y) = y {
                        v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, y.as_ptr().add(r * h + off)));
                        _mm512_mask_storeu_ps(p.add(off), m, v);
                    }
                    acc = _mm512_add_ps(acc, v);
                }
                let mean = _mm512_set1_ps(_mm512_reduce_add_ps(acc) / h as f32);
                let mut acc = _mm512_setzero_ps();
                for off in (0..h).step_by(16) {
                    let m = mask_for(h, off);
                    let d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, p.add(off)), mean);
                    acc = _mm512_fmadd_ps(d, d, acc);
                }
                let var = _mm512_reduce_add_ps(acc) / h as f32;
                let inv = _mm512_set1_ps(1.0 / (var + eps).sqrt());
                for off in (0..h).step_by(16) {
                    let m = mask_for(h, off);
                    let d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, p.add(off)), mean);
                    let g = _mm512_maskz_loadu_ps(m, gamma.as_ptr().add(off));
                    let b = _mm512_maskz_loadu_ps(m, beta.as_ptr().add(off));
                    _mm512_mask_storeu_ps(
                        p.add(off),
                        m,
                        _mm512_fmadd_ps(_mm512_mul_ps(d, inv), g, b),
                    );
                }
            }
        }
    }

    /// Queries computed together: their chains of vector updates are independent, so the
    /// CPU overlaps them, and the key and value rows are loaded once for all of them.
    const QB: usize = 4;

    /// The scalar path's algorithm (transposed keys, scores as vector updates over keys,
    /// context as vector updates over the head's dimensions) in 16-lane vectors, [`QB`]
    /// queries at a time. Each query's own operations and their order are the same as one
    /// query at a time, so the result does not depend on the grouping.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma")]
    pub(super) unsafe fn attention(
        qkv: &[f32],
        t: usize,
        heads: usize,
        head_dim: usize,
        ctx: &mut [f32],
        scratch: &mut Vec<f32>,
    ) {
        let h = heads * head_dim;
        // Keys transposed, then a row of scores per query of a group, each padded to whole
        // vectors.
        let tp = t.div_ceil(16) * 16;
        scratch.clear();
        scratch.resize(head_dim * tp + QB * tp, 0.0);
        let (kt, scores) = scratch.split_at_mut(head_dim * tp);
        for head in 0..heads {
            let qo = head * head_dim;
            let ko = h + qo;
            for j in 0..t {
                for d in 0..head_dim {
                    kt[d * tp + j] = qkv[j * 3 * h + ko + d];
                }
            }
            let shape = Shape {
                t,
                tp,
                h,
                head_dim,
                qo,
            };
            let mut i = 0;
            while i + QB <= t {
                // SAFETY: queries i..i+QB exist; buffers are sized above.
                unsafe { queries::<QB>(qkv, kt, scores, ctx, &shape, i) };
                i += QB;
            }
            // SAFETY: as above, for the remaining queries.
            unsafe {
                match t - i {
                    3 => queries::<3>(qkv, kt, scores, ctx, &shape, i),
                    2 => queries::<2>(qkv, kt, scores, ctx, &shape, i),
                    1 => queries::<1>(qkv, kt, scores, ctx, &shape, i),
                    _ => {}
                }
            }
        }
    }

    /// One head's sizes and offsets.
    struct Shape {
        t: usize,
        tp: usize,
        h: usize,
        head_dim: usize,
        qo: usize,
    }

    /// Attention of queries `i0..i0 + Q` of one head.
    // `d` and `j` index several arrays at once (keys, each query, values).
    #[allow(clippy::needless_range_loop)]
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma")]
    unsafe fn queries<const Q: usize>(
        qkv: &[f32],
        kt: &[f32],
        scores: &mut [f32],
        ctx: &mut [f32],
        s: &Shape,
        i0: usize,
    ) {
        let (t, tp, h, head_dim, qo) = (s.t, s.tp, s.h, s.head_dim, s.qo);
        let width = 3 * h;
        let vo = 2 * h + qo;
        let scale = 1.0 / (head_dim as f32).sqrt();
        let q: [&[f32]; Q] = std::array::from_fn(|u| {
            let r = (i0 + u) * width + qo;
            &qkv[r..r + head_dim]
        });
        // SAFETY (block): `kt` rows and each query's `scores` row are `tp` long, a multiple
        // of 16; loads of value rows and stores to `ctx` are masked to `head_dim`.
        unsafe {
            let mut vmax = [_mm512_set1_ps(f32::NEG_INFINITY); Q];
            for off in (0..tp).step_by(16) {
                let mut acc = [_mm512_setzero_ps(); Q];
                for d in 0..head_dim {
                    let k = _mm512_loadu_ps(kt.as_ptr().add(d * tp + off));
                    for u in 0..Q {
                        acc[u] = _mm512_fmadd_ps(_mm512_set1_ps(q[u][d] * scale), k, acc[u]);
                    }
                }
                for u in 0..Q {
                    _mm512_storeu_ps(scores.as_mut_ptr().add(u * tp + off), acc[u]);
                    vmax[u] = _mm512_mask_max_ps(vmax[u], mask_for(t, off), vmax[u], acc[u]);
                }
            }
            let mut inv = [0f32; Q];
            for u in 0..Q {
                let max = _mm512_set1_ps(_mm512_reduce_max_ps(vmax[u]));
                let mut vsum = _mm512_setzero_ps();
                for off in (0..tp).step_by(16) {
                    let m = mask_for(t, off);
                    let p = scores.as_mut_ptr().add(u * tp + off);
                    let e = _mm512_maskz_mov_ps(m, exp16(_mm512_sub_ps(_mm512_loadu_ps(p), max)));
                    _mm512_storeu_ps(p, e);
                    vsum = _mm512_add_ps(vsum, e);
                }
                inv[u] = 1.0 / _mm512_reduce_add_ps(vsum);
            }
            for off in (0..head_dim).step_by(16) {
                let m = mask_for(head_dim, off);
                let mut acc = [_mm512_setzero_ps(); Q];
                for j in 0..t {
                    let v = _mm512_maskz_loadu_ps(m, qkv.as_ptr().add(j * width + vo + off));
                    for u in 0..Q {
                        let p = *scores.get_unchecked(u * tp + j) * inv[u];
                        acc[u] = _mm512_fmadd_ps(_mm512_set1_ps(p), v, acc[u]);
                    }
                }
                for (u, acc) in acc.iter().enumerate() {
                    let c = ctx.as_mut_ptr().add((i0 + u) * h + qo + off);
                    _mm512_mask_storeu_ps(c, m, *acc);
                }
            }
        }
    }

    /// `R` rows times `Q` queries, `dim` wide: each of the `R × Q` dot products is its own
    /// chain of vector updates in the same order (then one horizontal sum), so grouping
    /// changes no bit of a result; the chains overlap, and each row and query vector is
    /// loaded once per block instead of once per pair.
    ///
    /// # Safety
    /// Every pointer addresses `dim` readable floats.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma")]
    unsafe fn dot_block<const R: usize, const Q: usize>(
        rows: [*const f32; R],
        queries: [*const f32; Q],
        dim: usize,
    ) -> [[f32; Q]; R] {
        let mut acc = [[_mm512_setzero_ps(); Q]; R];
        for off in (0..dim).step_by(16) {
            let m = mask_for(dim, off);
            // SAFETY: masked to `0..dim` of each (the caller's contract).
            unsafe {
                let q: [__m512; Q] =
                    std::array::from_fn(|u| _mm512_maskz_loadu_ps(m, queries[u].add(off)));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let a = _mm512_maskz_loadu_ps(m, rows[r].add(off));
                    for (acc, q) in acc.iter_mut().zip(&q) {
                        *acc = _mm512_fmadd_ps(a, *q, *acc);
                    }
                }
            }
        }
        acc.map(|row| row.map(|a| _mm512_reduce_add_ps(a)))
    }

    /// `out[r] = rows[r] · query` for each row of `rows` (`query.len()` wide), four rows at
    /// a time.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma")]
    pub(super) unsafe fn dot_rows(rows: &[f32], query: &[f32], out: &mut [f32]) {
        let dim = query.len();
        let q = [query.as_ptr()];
        let mut r = 0;
        // SAFETY (block): rows r..r+4 (or r) exist: `out.len() × dim == rows.len()`.
        unsafe {
            while r + 4 <= out.len() {
                let p = std::array::from_fn(|i| rows.as_ptr().add((r + i) * dim));
                for (o, v) in out[r..r + 4].iter_mut().zip(dot_block::<4, 1>(p, q, dim)) {
                    *o = v[0];
                }
                r += 4;
            }
            for (i, o) in out.iter_mut().enumerate().skip(r) {
                *o = dot_block::<1, 1>([rows.as_ptr().add(i * dim)], q, dim)[0][0];
            }
        }
    }

    /// `out[q × n + r] = rows[r] · queries[q]`, each row against four queries at a time.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma")]
    pub(super) unsafe fn dot_rows_batch(
        rows: &[f32],
        queries: &[f32],
        dim: usize,
        out: &mut [f32],
    ) {
        let n = rows.len() / dim;
        let b = queries.len() / dim;
        let qp = |q: usize| queries.as_ptr().wrapping_add(q * dim);
        // SAFETY (block): row r < n and queries < b exist (the caller checked the shapes).
        unsafe {
            for r in 0..n {
                let row = [rows.as_ptr().add(r * dim)];
                let mut q = 0;
                while q + 4 <= b {
                    let v = dot_block::<1, 4>(row, std::array::from_fn(|u| qp(q + u)), dim);
                    for (u, v) in v[0].iter().enumerate() {
                        out[(q + u) * n + r] = *v;
                    }
                    q += 4;
                }
                for q in q..b {
                    out[q * n + r] = dot_block::<1, 1>(row, [qp(q)], dim)[0][0];
                }
            }
        }
    }
}

/// `out[r] = rows[r] · query` for each row of `rows` (row-major, `query.len()` wide): the
/// out-of-scope rule's nearest-neighbour scores as one matrix-vector product.
pub fn dot_rows(rows: &[f32], query: &[f32], out: &mut [f32]) {
    assert_eq!(rows.len(), query.len() * out.len(), "rows is not out × dim");
    if query.is_empty() {
        out.fill(0.0);
        return;
    }
    match level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `level` checked the CPU features; shapes checked above.
        l if l.avx512() => unsafe { avx512::dot_rows(rows, query, out) },
        _ => {
            for (row, o) in rows.chunks_exact(query.len()).zip(out.iter_mut()) {
                *o = row.iter().zip(query).map(|(a, b)| a * b).sum();
            }
        }
    }
}

/// `out[q × n + r] = rows[r] · queries[q]` for `n` rows and several queries, each `dim` wide:
/// the loop runs over rows outside and queries inside, so each row is read from memory once
/// for the whole batch. Each score is the same sum as [`dot_rows`] computes.
pub fn dot_rows_batch(rows: &[f32], queries: &[f32], dim: usize, out: &mut [f32]) {
    let n = rows.len() / dim.max(1);
    let b = queries.len() / dim.max(1);
    assert_eq!(rows.len(), n * dim, "rows is not n × dim");
    assert_eq!(queries.len(), b * dim, "queries is not b × dim");
    assert_eq!(out.len(), b * n, "out is not b × n");
    if dim == 0 {
        out.fill(0.0);
        return;
    }
    match level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `level` checked the CPU features; shapes checked above.
        l if l.avx512() => unsafe { avx512::dot_rows_batch(rows, queries, dim, out) },
        _ => {
            for (r, row) in rows.chunks_exact(dim).enumerate() {
                for (q, query) in queries.chunks_exact(dim).enumerate() {
                    let mut one = [0f32];
                    dot_rows(row, query, &mut one);
                    out[q * n + r] = one[0];
                }
            }
        }
    }
}

/// Applies GELU (the exact, erf-based one BERT uses) in place.
pub fn gelu(x: &mut [f32]) {
    match level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `level` checked the CPU features.
        l if l.avx512() => unsafe { gelu_avx512(x) },
        _ => gelu_scalar(x),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma")]
fn gelu_avx512(x: &mut [f32]) {
    // SAFETY: the features are enabled on this function.
    unsafe { avx512::gelu(x) }
}

fn gelu_scalar(x: &mut [f32]) {
    for v in x {
        *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// `e^x` for f32 without branches (so it vectorises): Cody–Waite reduction by ln 2 and a
/// degree-6 Taylor polynomial on |r| ≤ ln2/2; relative error below 2e-7 on [-87, 88], inputs
/// outside clamped.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2E).round_ties_even();
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    p * f32::from_bits(((n as i32 + 127) << 23) as u32)
}

/// The error function, by Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7, plus f32
/// rounding), branch-free.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A1: f32 = 0.254_829_6;
    const A2: f32 = -0.284_496_74;
    const A3: f32 = 1.421_413_7;
    const A4: f32 = -1.453_152_1;
    const A5: f32 = 1.061_405_4;
    let a = x.abs();
    let t = 1.0 / (1.0 + P * a);
    let poly = t * (A1 + t * (A2 + t * (A3 + t * (A4 + t * A5))));
    (1.0 - poly * exp(-a * a)).copysign(x)
}

/// `x = LayerNorm(x + y)` row by row (rows of `gamma.len()`), in place.
pub fn add_layer_norm(x: &mut [f32], y: Option<&[f32]>, gamma: &[f32], beta: &[f32], eps: f32) {
    match level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `level` checked the CPU features.
        l if l.avx512() => unsafe { add_layer_norm_avx512(x, y, gamma, beta, eps) },
        _ => add_layer_norm_scalar(x, y, gamma, beta, eps),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma")]
fn add_layer_norm_avx512(x: &mut [f32], y: Option<&[f32]>, gamma: &[f32], beta: &[f32], eps: f32) {
    // SAFETY: the features are enabled on this function.
    unsafe { avx512::add_layer_norm(x, y, gamma, beta, eps) }
}

fn add_layer_norm_scalar(x: &mut [f32], y: Option<&[f32]>, gamma: &[f32], beta: &[f32], eps: f32) {
    let h = gamma.len();
    for (r, row) in x.chunks_exact_mut(h).enumerate() {
        if let Some(y) = y {
            for (a, b) in row.iter_mut().zip(&y[r * h..(r + 1) * h]) {
                *a += b;
            }
        }
        let mean = sum(row) / h as f32;
        let mut lanes = [0f32; 16];
        let mut chunks = row.chunks_exact(16);
        for c in &mut chunks {
            for (l, v) in lanes.iter_mut().zip(c) {
                *l += (v - mean) * (v - mean);
            }
        }
        let tail: f32 = chunks
            .remainder()
            .iter()
            .map(|v| (v - mean) * (v - mean))
            .sum();
        let var = (lanes.iter().sum::<f32>() + tail) / h as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *v = (*v - mean) * inv * g + b;
        }
    }
}

#[inline(always)]
fn sum(v: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let mut chunks = v.chunks_exact(16);
    for c in &mut chunks {
        for (l, x) in lanes.iter_mut().zip(c) {
            *l += x;
        }
    }
    lanes.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

/// Self-attention of one sequence: `qkv` holds its `t` token rows of `[q ‖ k ‖ v]` (each
/// `heads × head_dim` wide); the context vectors are written to `ctx` (`t × heads·head_dim`).
/// `scratch` is reused between calls.
pub fn attention(
    qkv: &[f32],
    t: usize,
    heads: usize,
    head_dim: usize,
    ctx: &mut [f32],
    scratch: &mut Vec<f32>,
) {
    match level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `level` checked the CPU features.
        l if l.avx512() => unsafe { attention_avx512(qkv, t, heads, head_dim, ctx, scratch) },
        _ => attention_scalar(qkv, t, heads, head_dim, ctx, scratch),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma")]
fn attention_avx512(
    qkv: &[f32],
    t: usize,
    heads: usize,
    head_dim: usize,
    ctx: &mut [f32],
    scratch: &mut Vec<f32>,
) {
    // SAFETY: the features are enabled on this function.
    unsafe { avx512::attention(qkv, t, heads, head_dim, ctx, scratch) }
}

/// Keys are transposed per head (`head_dim × t`) so that a query's scores are `head_dim`
/// vector updates over the `t` keys, and its context `t` updates over `head_dim`: no
/// horizontal sums, all of it vectorises.
fn attention_scalar(
    qkv: &[f32],
    t: usize,
    heads: usize,
    head_dim: usize,
    ctx: &mut [f32],
    scratch: &mut Vec<f32>,
) {
    let h = heads * head_dim;
    let width = 3 * h;
    let scale = 1.0 / (head_dim as f32).sqrt();
    scratch.clear();
    scratch.resize(head_dim * t + t, 0.0);
    let (kt, scores) = scratch.split_at_mut(head_dim * t);
    for head in 0..heads {
        let qo = head * head_dim;
        let ko = h + qo;
        let vo = 2 * h + qo;
        for j in 0..t {
            for d in 0..head_dim {
                kt[d * t + j] = qkv[j * width + ko + d];
            }
        }
        for i in 0..t {
            let q = &qkv[i * width + qo..i * width + qo + head_dim];
            scores.fill(0.0);
            for (d, &qd) in q.iter().enumerate() {
                let qd = qd * scale;
                for (s, &k) in scores.iter_mut().zip(&kt[d * t..(d + 1) * t]) {
                    *s += qd * k;
                }
            }
            let max = scores.iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s));
            for s in scores.iter_mut() {
                *s = exp(*s - max);
            }
            let inv = 1.0 / sum(scores);
            let c = &mut ctx[i * h + qo..i * h + qo + head_dim];
            c.fill(0.0);
            for (j, &p) in scores.iter().enumerate() {
                let p = p * inv;
                for (c, &v) in c
                    .iter_mut()
                    .zip(&qkv[j * width + vo..j * width + vo + head_dim])
                {
                    *c += p * v;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo_random(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn reference_product(
        x: &[f32],
        w: &[f32],
        bias: &[f32],
        m: usize,
        n: usize,
        k: usize,
    ) -> Vec<f32> {
        let mut out = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let dot: f64 = (0..k)
                    .map(|kk| f64::from(x[i * k + kk]) * f64::from(w[j * k + kk]))
                    .sum();
                out[i * n + j] = dot as f32 + bias[j];
            }
        }
        out
    }

    /// Shapes with every tail: rows not a multiple of the row tile, outputs not a multiple of a
    /// tile, inputs not a multiple of a block.
    const SHAPES: [(usize, usize, usize); 4] =
        [(1, 64, 64), (7, 80, 100), (17, 384, 384), (53, 192, 1536)];

    #[test]
    fn int8_product_matches_f32_within_quantisation_error() {
        for (m, n, k) in SHAPES {
            let x = pseudo_random(m * k, 1);
            let w = pseudo_random(n * k, 2);
            let bias = pseudo_random(n, 3);
            let packed = PackedMatrix::pack(&w, &bias, n, k);
            let mut q = QuantRows::default();
            quantize_rows(&x, m, k, &mut q);
            let mut out = vec![0f32; m * n];
            gemm(&q, &packed, &mut out);
            let want = reference_product(&x, &w, &bias, m, n, k);
            // Each product term carries two roundings, uniform within half a step (1/127) of
            // values in [-1, 1]: variance 2 × (1/3) × step²/12 per term; allow five standard
            // deviations of the sum of k terms
            // (about 10⁴ outputs per shape).
            let tol = 5.0 * (k as f32 / 18.0).sqrt() / 127.0;
            for (a, b) in out.iter().zip(&want) {
                assert!((a - b).abs() <= tol, "{m}×{n}×{k}: {a} vs {b}");
            }
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn simd_product_equals_scalar_path() {
        if !level().avx512() {
            return;
        }
        let tiles = [(16, 64, 384), (32, 128, 128), (33, 64, 64)];
        for (m, n, k) in SHAPES.into_iter().chain(tiles) {
            let x = pseudo_random(m * k, 4);
            let w = pseudo_random(n * k, 5);
            let bias = pseudo_random(n, 6);
            let packed = PackedMatrix::pack(&w, &bias, n, k);
            let mut q = QuantRows::default();
            quantize_scalar_checked(&x, m, k, &mut q);
            let mut slow = vec![0f32; m * packed.n_pad];
            gemm_scalar(&q, &packed, &mut slow);
            let mut fast = vec![0f32; m * packed.n_pad];
            // SAFETY: `level` found AVX-512 VNNI; `quantize_rows` shaped `q`.
            unsafe { avx512::gemm(&q, &packed, &mut fast) };
            assert_eq!(fast, slow, "VNNI {m}×{n}×{k}");
            if level() == Level::Avx512Amx {
                let mut tiles = vec![0f32; m * packed.n_pad];
                // SAFETY: `level` found AMX and got the OS's permission; rows are padded.
                unsafe { amx::gemm(&q, &packed, &mut tiles) };
                assert_eq!(tiles, slow, "AMX {m}×{n}×{k}");
            }
        }
    }

    /// Quantises through both paths and checks they agree byte for byte.
    fn quantize_scalar_checked(x: &[f32], m: usize, k: usize, q: &mut QuantRows) {
        quantize_rows(x, m, k, q);
        let mut plain = QuantRows {
            m,
            k_pad: q.k_pad,
            data: vec![128; q.data.len()],
            scales: vec![0.0; q.scales.len()],
        };
        quantize_scalar(x, k, &mut plain);
        assert_eq!(plain.data, q.data);
        assert_eq!(plain.scales, q.scales);
    }

    #[test]
    fn rounding_to_i8_is_to_nearest_even_and_clamped() {
        for (x, want) in [
            (0.5f32, 0),
            (1.5, 2),
            (2.5, 2),
            (-0.5, 0),
            (-1.5, -2),
            (126.6, 127),
            (300.0, 127),
            (-1e9, -127),
            (0.49, 0),
        ] {
            assert_eq!(round_to_i8(x), want, "{x}");
        }
        for i in -12700..=12700 {
            let x = i as f32 / 100.0;
            assert_eq!(round_to_i8(x), x.round_ties_even() as i8, "{x}");
        }
    }

    #[test]
    fn exp_is_accurate() {
        let mut worst = 0f64;
        for i in -8700..=8800 {
            let x = i as f32 / 100.0;
            let want = f64::from(x).exp();
            let rel = ((f64::from(exp(x)) - want) / want).abs();
            worst = worst.max(rel);
        }
        assert!(worst < 4e-7, "worst relative error {worst}");
    }

    /// erf by its Taylor series in f64, accurate to ~1e-12 on |x| ≤ 3.
    fn erf_reference(x: f64) -> f64 {
        let mut term = x;
        let mut total = x;
        for n in 1..200 {
            term *= -x * x / n as f64;
            total += term / (2 * n + 1) as f64;
        }
        total * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn erf_is_accurate_and_saturates() {
        let mut worst = 0f64;
        for i in -3000..=3000 {
            let x = i as f32 / 1000.0;
            worst = worst.max((f64::from(erf(x)) - erf_reference(f64::from(x))).abs());
        }
        assert!(worst < 1e-6, "worst absolute error {worst}");
        for x in [3.5f32, 5.0, 10.0, 1e6] {
            assert!((erf(x) - 1.0).abs() < 1e-5 && (erf(-x) + 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn fast_elementwise_paths_match_plain_ones() {
        let x: Vec<f32> = pseudo_random(1000, 7).iter().map(|v| v * 6.0).collect();
        let mut a = x.clone();
        gelu(&mut a);
        let mut b = x.clone();
        gelu_scalar(&mut b);
        for (a, b) in a.iter().zip(&b) {
            assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0));
        }
        let y = pseudo_random(1000, 8);
        let (g, be) = (pseudo_random(100, 9), pseudo_random(100, 10));
        let mut a = x.clone();
        add_layer_norm(&mut a, Some(&y), &g, &be, 1e-12);
        let mut b = x.clone();
        add_layer_norm_scalar(&mut b, Some(&y), &g, &be, 1e-12);
        for (a, b) in a.iter().zip(&b) {
            assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0));
        }
    }

    #[test]
    fn fast_attention_and_dot_products_match_plain_ones() {
        // Lengths with vector tails: 17 keys, 20-wide heads.
        for (t, heads, hd) in [(17, 3, 20), (16, 12, 32), (1, 2, 32), (40, 2, 16)] {
            let h = heads * hd;
            let qkv: Vec<f32> = pseudo_random(t * 3 * h, 13)
                .iter()
                .map(|v| v * 3.0)
                .collect();
            let mut fast = vec![0f32; t * h];
            attention(&qkv, t, heads, hd, &mut fast, &mut Vec::new());
            let mut plain = vec![0f32; t * h];
            attention_scalar(&qkv, t, heads, hd, &mut plain, &mut Vec::new());
            for (a, b) in fast.iter().zip(&plain) {
                assert!((a - b).abs() < 1e-5, "t={t} hd={hd}: {a} vs {b}");
            }
        }
        let rows = pseudo_random(37 * 21, 14);
        let query = pseudo_random(21, 15);
        let mut out = vec![0f32; 37];
        dot_rows(&rows, &query, &mut out);
        // Six queries: a block of four and two alone; each score bit for bit as alone.
        let queries: Vec<f32> = [query.clone(), pseudo_random(5 * 21, 16)].concat();
        let mut batch = vec![0f32; 6 * 37];
        dot_rows_batch(&rows, &queries, 21, &mut batch);
        assert_eq!(&batch[..37], &out[..]);
        for (q, query) in queries.chunks(21).enumerate() {
            let mut alone = vec![0f32; 37];
            dot_rows(&rows, query, &mut alone);
            assert_eq!(&batch[q * 37..(q + 1) * 37], &alone[..], "query {q}");
            for (r, row) in rows.chunks(21).enumerate() {
                let mut one = [0f32];
                dot_rows(row, query, &mut one);
                assert_eq!(one[0], alone[r], "row {r} alone");
            }
        }
        for (row, o) in rows.chunks(21).zip(&out) {
            let want: f32 = row.iter().zip(&query).map(|(a, b)| a * b).sum();
            assert!((o - want).abs() < 1e-5);
        }
    }

    #[test]
    fn layer_norm_normalises_rows() {
        let x = pseudo_random(384 * 3, 11);
        let mut a = x.clone();
        let g = vec![1.0; 384];
        let b = vec![0.0; 384];
        add_layer_norm(&mut a, None, &g, &b, 1e-12);
        for row in a.chunks(384) {
            let mean: f32 = row.iter().sum::<f32>() / 384.0;
            let var: f32 = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / 384.0;
            assert!(
                mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-4,
                "{mean} {var}"
            );
        }
    }

    #[test]
    fn attention_matches_direct_softmax() {
        let (t, heads, hd) = (5, 2, 8);
        let h = heads * hd;
        let qkv = pseudo_random(t * 3 * h, 12);
        let mut ctx = vec![0f32; t * h];
        attention(&qkv, t, heads, hd, &mut ctx, &mut Vec::new());
        for head in 0..heads {
            for i in 0..t {
                let q = &qkv[i * 3 * h + head * hd..][..hd];
                let s: Vec<f64> = (0..t)
                    .map(|j| {
                        let k = &qkv[j * 3 * h + h + head * hd..][..hd];
                        q.iter().zip(k).map(|(a, b)| f64::from(a * b)).sum::<f64>()
                            / (hd as f64).sqrt()
                    })
                    .collect();
                let z: f64 = s.iter().map(|v| v.exp()).sum();
                for d in 0..hd {
                    let want: f64 = (0..t)
                        .map(|j| s[j].exp() / z * f64::from(qkv[j * 3 * h + 2 * h + head * hd + d]))
                        .sum();
                    let got = f64::from(ctx[i * h + head * hd + d]);
                    assert!((got - want).abs() < 1e-5, "{got} vs {want}");
                }
            }
        }
    }
}
