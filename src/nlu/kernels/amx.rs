//! The int8 matrix product on Intel AMX tiles (`tdpbssd`: a 16 × 64 i8 tile times a 64 × 16
//! i8 tile into 16 × 16 i32 in one instruction, 16 times the multiply-adds of a VNNI one).
//!
//! The arithmetic is exactly the VNNI kernel's and the scalar path's: per block of [`KB`]
//! inputs the tile unit forms the integer sums (of the rows as signed bytes, which equal the
//! others' offset-corrected sums), and AVX-512 then converts and adds
//! `sum × (weight scale × row scale)` into each output in block order, so all three paths
//! give the same bits. The packed weights need no new layout:
//! a panel's block (16 outputs × 64 inputs, 4 inputs per output consecutive) is already the
//! 16-row, 64-byte B tile `tdpbssd` takes, and a block of 16 quantised token rows is its A tile
//! read with the row stride. [`super::quantize_rows`] pads the rows to a whole tile so the last
//! A tile never reads past the buffer.
//!
//! Tile instructions have no Rust intrinsics on stable, so they are written with `asm!`; tile
//! registers are named in the templates and never hold values between `asm!` blocks except
//! inside one call of [`gemm`], which configures the tiles first and releases them at the end
//! (so a thread switch with no tile state in use costs Linux nothing extra).

use super::{KB, NR, NV, PackedMatrix, QuantRows, ROW_TILE as MT};
use core::arch::asm;
use core::arch::x86_64::*;
use std::cell::RefCell;

/// Blocks of [`KB`] inputs whose tile sums are held before they are folded into the outputs
/// (4 panels × 16 rows × 16 i32 × 6 blocks = 24 KB of scratch, within L1).
const KC: usize = 6;

/// Whether this CPU and OS let the process use AMX int8 tiles. On Linux a process must ask
/// for the tile state first (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`); the
/// permission covers every thread of the process.
pub(super) fn available() -> bool {
    let max_leaf = __cpuid(0).eax;
    if max_leaf < 7 {
        return false;
    }
    let edx = __cpuid_count(7, 0).edx;
    let (tile, int8) = (edx & (1 << 24) != 0, edx & (1 << 25) != 0);
    if !(tile && int8) {
        return false;
    }
    request_tile_permission()
}

#[cfg(target_os = "linux")]
fn request_tile_permission() -> bool {
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: arch_prctl with this request only changes the process's permitted xsave
    // features; it reads and writes no memory of ours.
    unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_REQ_XCOMP_PERM,
            XFEATURE_XTILEDATA,
        ) == 0
    }
}

#[cfg(not(target_os = "linux"))]
fn request_tile_permission() -> bool {
    false
}

/// `ldtilecfg`'s 64-byte operand: palette 1, every tile 16 rows of 64 bytes.
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    colsb: [u16; 16],
    rows: [u8; 16],
}

static CONFIG: TileConfig = {
    let mut colsb = [0u16; 16];
    let mut rows = [0u8; 16];
    let mut t = 0;
    while t < 8 {
        colsb[t] = 64;
        rows[t] = MT as u8;
        t += 1;
    }
    TileConfig {
        palette: 1,
        start_row: 0,
        reserved: [0; 14],
        colsb,
        rows,
    }
};

thread_local! {
    /// Tile sums of one row tile: `[block in chunk][panel][row][lane]`.
    static SCRATCH: RefCell<Vec<i32>> = const { RefCell::new(Vec::new()) };
    /// The token rows as signed bytes (the stored byte − 128).
    static SIGNED: RefCell<Vec<i8>> = const { RefCell::new(Vec::new()) };
}

/// `out (m × n_pad) = x · Wᵀ + bias`. Tiles: tmm0–3 the four panels' sums, tmm4 the token
/// rows, tmm5–7 weight blocks.
///
/// # Safety
/// [`available`] returned true, the CPU has AVX-512 F/BW/VL, `x.data` holds
/// `m` rounded up to [`MT`] rows of `x.k_pad` bytes, `x.k_pad == w.k_pad` and
/// `out.len() == m × w.n_pad`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma")]
pub(super) unsafe fn gemm(x: &QuantRows, w: &PackedMatrix, out: &mut [f32]) {
    let blocks = w.k_pad / KB;
    let m = x.m;
    let panel_stride = KB * NR;
    let tile_i32 = MT * NR;
    SCRATCH.with(|scratch| {
        SIGNED.with(|signed| {
            let mut scratch = scratch.borrow_mut();
            scratch.resize(KC * NV * tile_i32, 0);
            let sp = scratch.as_mut_ptr();
            // Rows as signed bytes, so that the tiles multiply i8 × i8 (`tdpbssd`) and give
            // Σ (a − 128)·w = Σ a·w − 128·Σ w directly: the exact integers the other paths reach
            // by subtracting the precomputed offset term, with one vector operation less per
            // output in the combine loop below.
            let mut signed = signed.borrow_mut();
            signed.clear();
            signed.extend(x.data.iter().map(|&b| (b ^ 0x80) as i8));
            let xs = signed.as_ptr();
            // SAFETY (whole body): the caller's contract bounds every tile load (the A tile's 16
            // rows lie in the padded `x.data`, a B tile is one panel's block of 1 KB inside
            // `w.data`) and every tile store (one 1 KB slot of `scratch`); the combine loop reads
            // only what was stored and writes rows below `m` of `out`.
            unsafe {
                asm!("ldtilecfg [{}]", in(reg) &CONFIG, options(nostack, readonly));
                for nt in (0..w.n_pad).step_by(NR * NV) {
                    let wp = w.data.as_ptr().add(nt * w.k_pad);
                    for mt in (0..m).step_by(MT) {
                        let rows = (m - mt).min(MT);
                        for b0 in (0..blocks).step_by(KC) {
                            let b1 = (b0 + KC).min(blocks);
                            for b in b0..b1 {
                                let a = xs.add(mt * x.k_pad + b * KB);
                                let bp = wp.add(b * KB * NR * NV);
                                let c = sp.add((b - b0) * NV * tile_i32);
                                asm!(
                                    "tileloadd tmm4, [{a} + {sa}]",
                                    "tilezero tmm0",
                                    "tilezero tmm1",
                                    "tilezero tmm2",
                                    "tilezero tmm3",
                                    "tileloadd tmm5, [{w0} + {s64}]",
                                    "tileloadd tmm6, [{w1} + {s64}]",
                                    "tileloadd tmm7, [{w2} + {s64}]",
                                    "tdpbssd tmm0, tmm4, tmm5",
                                    "tdpbssd tmm1, tmm4, tmm6",
                                    "tileloadd tmm5, [{w3} + {s64}]",
                                    "tdpbssd tmm2, tmm4, tmm7",
                                    "tdpbssd tmm3, tmm4, tmm5",
                                    "tilestored [{c} + {s64}], tmm0",
                                    "tilestored [{c} + {s64} + 1024], tmm1",
                                    "tilestored [{c} + {s64} + 2048], tmm2",
                                    "tilestored [{c} + {s64} + 3072], tmm3",
                                    a = in(reg) a,
                                    sa = in(reg) x.k_pad,
                                    w0 = in(reg) bp,
                                    w1 = in(reg) bp.add(panel_stride),
                                    w2 = in(reg) bp.add(2 * panel_stride),
                                    w3 = in(reg) bp.add(3 * panel_stride),
                                    c = in(reg) c,
                                    s64 = in(reg) 64usize,
                                    options(nostack),
                                );
                            }
                            combine(x, w, out, sp, mt, rows, nt, b0, b1);
                        }
                    }
                }
                asm!("tilerelease", options(nostack, nomem));
            }
        })
    });
}

/// Folds the stored tile sums of blocks `b0..b1` into `out` for rows `mt..mt + rows` and
/// the 64 outputs from `nt`: the first chunk starts from the bias, later ones from `out`.
///
/// # Safety
/// `sp` holds `(b1 − b0) × NV` stored tiles; the rows and columns are inside `out`.
#[allow(clippy::too_many_arguments)]
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma")]
unsafe fn combine(
    x: &QuantRows,
    w: &PackedMatrix,
    out: &mut [f32],
    sp: *const i32,
    mt: usize,
    rows: usize,
    nt: usize,
    b0: usize,
    b1: usize,
) {
    let blocks = w.k_pad / KB;
    let tile_i32 = MT * NR;
    // SAFETY: see the function's contract.
    unsafe {
        for r in 0..rows {
            let row = mt + r;
            let op = out.as_mut_ptr().add(row * w.n_pad + nt);
            let mut acc = [_mm512_setzero_ps(); NV];
            for (v, acc) in acc.iter_mut().enumerate() {
                *acc = if b0 == 0 {
                    _mm512_loadu_ps(w.bias.as_ptr().add(nt + v * NR))
                } else {
                    _mm512_loadu_ps(op.add(v * NR))
                };
            }
            for b in b0..b1 {
                let sa = _mm512_set1_ps(*x.scales.get_unchecked(row * blocks + b));
                let tiles = sp.add((b - b0) * NV * tile_i32 + r * NR);
                let sw = w.scales.as_ptr().add(b * w.n_pad + nt);
                for (v, acc) in acc.iter_mut().enumerate() {
                    let sum = _mm512_loadu_si512(tiles.add(v * tile_i32).cast());
                    let f = _mm512_cvtepi32_ps(sum);
                    let scale = _mm512_mul_ps(_mm512_loadu_ps(sw.add(v * NR)), sa);
                    *acc = _mm512_fmadd_ps(f, scale, *acc);
                }
            }
            for (v, acc) in acc.iter().enumerate() {
                _mm512_storeu_ps(op.add(v * NR), *acc);
            }
        }
    }
}
