//! A BERT encoder forward pass with 8-bit linear layers on our own kernels
//! ([`super::kernels`]), for low latency and high throughput on CPU.
//!
//! Weights are quantised to i8 per output row and block of 64 inputs, activations to u8 per
//! token and block, on the fly before each product; attention, softmax, GELU and LayerNorm
//! stay in f32. Sequences are not padded: the tokens of all messages of a batch are stacked
//! into one matrix for the linear layers, and attention runs per message over its own length,
//! so a batch costs what its tokens cost. A batch is split across threads by messages; each
//! thread runs whole forward passes with no synchronisation between operations.

use candle_core::Result;
use candle_nn::VarBuilder;
use candle_transformers::models::bert::Config;
use half::f16;
use rayon::prelude::*;

use super::kernels::{self, PackedMatrix, QuantRows};

struct Norm {
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

impl Norm {
    fn load(vb: VarBuilder, dim: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            weight: vb.get(dim, "weight")?.to_vec1()?,
            bias: vb.get(dim, "bias")?.to_vec1()?,
            eps: eps as f32,
        })
    }
}

/// Several linear layers over the same input packed as one matrix (outputs concatenated), so
/// one product serves them all (used for Q, K and V).
fn linear(vbs: &[VarBuilder], in_dim: usize, out_dim: usize) -> Result<PackedMatrix> {
    let mut weight = Vec::with_capacity(vbs.len() * out_dim * in_dim);
    let mut bias = Vec::with_capacity(vbs.len() * out_dim);
    for vb in vbs {
        weight.extend(
            vb.get((out_dim, in_dim), "weight")?
                .flatten_all()?
                .to_vec1::<f32>()?,
        );
        bias.extend(vb.get(out_dim, "bias")?.to_vec1::<f32>()?);
    }
    Ok(PackedMatrix::pack(
        &weight,
        &bias,
        vbs.len() * out_dim,
        in_dim,
    ))
}

struct Layer {
    /// Query, key and value projections fused.
    qkv: PackedMatrix,
    attn_out: PackedMatrix,
    attn_norm: Norm,
    ff_in: PackedMatrix,
    ff_out: PackedMatrix,
    out_norm: Norm,
}

/// The quantized encoder.
pub struct QBert {
    /// Word embeddings in f16: the table is most of the model (250k rows for XLM-R), and f16
    /// halves it at no measurable cost, as LayerNorm follows.
    word: Vec<f16>,
    vocab: usize,
    position: Vec<f32>,
    max_positions: usize,
    /// Token type 0's embedding (single-segment inputs only).
    token_type: Vec<f32>,
    emb_norm: Norm,
    layers: Vec<Layer>,
    heads: usize,
    hidden: usize,
    intermediate: usize,
}

/// Buffers one thread reuses across the layers of a forward pass.
#[derive(Default)]
struct Scratch {
    q: QuantRows,
    qkv: Vec<f32>,
    ctx: Vec<f32>,
    tmp: Vec<f32>,
    ff: Vec<f32>,
    attn: Vec<f32>,
}

impl QBert {
    pub fn load(vb: VarBuilder, c: &Config) -> Result<Self> {
        let vb = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") {
            vb.pp("bert")
        } else {
            vb
        };
        let h = c.hidden_size;
        let e = vb.pp("embeddings");
        let layers = (0..c.num_hidden_layers)
            .map(|i| {
                let l = vb.pp(format!("encoder.layer.{i}"));
                let a = l.pp("attention");
                Ok(Layer {
                    qkv: linear(
                        &[a.pp("self.query"), a.pp("self.key"), a.pp("self.value")],
                        h,
                        h,
                    )?,
                    attn_out: linear(&[a.pp("output.dense")], h, h)?,
                    attn_norm: Norm::load(a.pp("output.LayerNorm"), h, c.layer_norm_eps)?,
                    ff_in: linear(&[l.pp("intermediate.dense")], h, c.intermediate_size)?,
                    ff_out: linear(&[l.pp("output.dense")], c.intermediate_size, h)?,
                    out_norm: Norm::load(l.pp("output.LayerNorm"), h, c.layer_norm_eps)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let word = e
            .get((c.vocab_size, h), "word_embeddings.weight")?
            .flatten_all()?
            .to_vec1::<f32>()?
            .into_iter()
            .map(f16::from_f32)
            .collect();
        Ok(Self {
            word,
            vocab: c.vocab_size,
            position: e
                .get((c.max_position_embeddings, h), "position_embeddings.weight")?
                .flatten_all()?
                .to_vec1()?,
            max_positions: c.max_position_embeddings,
            token_type: e
                .get((c.type_vocab_size, h), "token_type_embeddings.weight")?
                .get(0)?
                .to_vec1()?,
            emb_norm: Norm::load(e.pp("LayerNorm"), h, c.layer_norm_eps)?,
            layers,
            heads: c.num_attention_heads,
            hidden: h,
            intermediate: c.intermediate_size,
        })
    }

    /// Mean-pooled, L2-normalised sentence embeddings, one per token sequence. Sequences must
    /// be no longer than the model's position table; ids must be inside its vocabulary.
    pub fn embed(&self, seqs: &[&[u32]]) -> Vec<Vec<f32>> {
        let threads = rayon::current_num_threads().max(1);
        if seqs.len() < 2 || threads < 2 {
            return self.embed_on_this_thread(seqs, &mut Scratch::default());
        }
        // Contiguous groups of about equal token counts, one or more per thread.
        let total: usize = seqs.iter().map(|s| s.len()).sum();
        let per = total.div_ceil(threads).max(1);
        let mut groups = Vec::new();
        let (mut start, mut tokens) = (0, 0);
        for (i, s) in seqs.iter().enumerate() {
            tokens += s.len();
            if tokens >= per {
                groups.push(&seqs[start..=i]);
                start = i + 1;
                tokens = 0;
            }
        }
        if start < seqs.len() {
            groups.push(&seqs[start..]);
        }
        groups
            .into_par_iter()
            .map_init(Scratch::default, |scratch, g| {
                self.embed_on_this_thread(g, scratch)
            })
            .flatten()
            .collect()
    }

    fn embed_on_this_thread(&self, seqs: &[&[u32]], s: &mut Scratch) -> Vec<Vec<f32>> {
        let h = self.hidden;
        let m: usize = seqs.iter().map(|s| s.len()).sum();
        if m == 0 {
            return seqs.iter().map(|_| vec![0.0; h]).collect();
        }
        let mut x = vec![0f32; m * h];
        let mut row = 0;
        for seq in seqs {
            for (p, &id) in seq.iter().enumerate() {
                let id = (id as usize).min(self.vocab - 1);
                let p = p.min(self.max_positions - 1);
                let dst = &mut x[row * h..(row + 1) * h];
                let word = &self.word[id * h..(id + 1) * h];
                let pos = &self.position[p * h..(p + 1) * h];
                for (((d, w), p), t) in dst.iter_mut().zip(word).zip(pos).zip(&self.token_type) {
                    *d = w.to_f32() + p + t;
                }
                row += 1;
            }
        }
        let n = &self.emb_norm;
        kernels::add_layer_norm(&mut x, None, &n.weight, &n.bias, n.eps);
        s.qkv.resize(m * 3 * h, 0.0);
        s.ctx.resize(m * h, 0.0);
        s.tmp.resize(m * h, 0.0);
        s.ff.resize(m * self.intermediate, 0.0);
        let hd = h / self.heads;
        for l in &self.layers {
            kernels::quantize_rows(&x, m, h, &mut s.q);
            kernels::gemm(&s.q, &l.qkv, &mut s.qkv);
            let mut at = 0;
            for seq in seqs {
                let t = seq.len();
                kernels::attention(
                    &s.qkv[at * 3 * h..(at + t) * 3 * h],
                    t,
                    self.heads,
                    hd,
                    &mut s.ctx[at * h..(at + t) * h],
                    &mut s.attn,
                );
                at += t;
            }
            kernels::quantize_rows(&s.ctx, m, h, &mut s.q);
            kernels::gemm(&s.q, &l.attn_out, &mut s.tmp);
            let n = &l.attn_norm;
            kernels::add_layer_norm(&mut x, Some(&s.tmp), &n.weight, &n.bias, n.eps);
            kernels::quantize_rows(&x, m, h, &mut s.q);
            kernels::gemm(&s.q, &l.ff_in, &mut s.ff);
            kernels::gelu(&mut s.ff);
            kernels::quantize_rows(&s.ff, m, self.intermediate, &mut s.q);
            kernels::gemm(&s.q, &l.ff_out, &mut s.tmp);
            let n = &l.out_norm;
            kernels::add_layer_norm(&mut x, Some(&s.tmp), &n.weight, &n.bias, n.eps);
        }
        let mut out = Vec::with_capacity(seqs.len());
        let mut at = 0;
        for seq in seqs {
            let t = seq.len();
            let mut mean = vec![0f32; h];
            for r in at..at + t {
                for (a, b) in mean.iter_mut().zip(&x[r * h..(r + 1) * h]) {
                    *a += b;
                }
            }
            let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            // Dividing by the token count first would cancel in the normalisation.
            mean.iter_mut().for_each(|v| *v /= norm);
            out.push(mean);
            at += t;
        }
        out
    }

    /// Bytes of weights held.
    pub fn weight_bytes(&self) -> usize {
        let layers: usize = self
            .layers
            .iter()
            .map(|l| l.qkv.bytes() + l.attn_out.bytes() + l.ff_in.bytes() + l.ff_out.bytes())
            .sum();
        layers + 2 * self.word.len() + 4 * self.position.len()
    }
}
