//! A BERT encoder forward pass with 8-bit linear layers on our own kernels
//! ([`super::kernels`]), for low latency and high throughput on CPU.
//!
//! Weights are quantised to i8 per output row and block of 64 inputs, activations to u8 per
//! token and block, on the fly before each product; attention, softmax, GELU and LayerNorm
//! stay in f32. Sequences are not padded: the tokens of all messages of a batch are stacked
//! into one matrix for the linear layers, and attention runs per message over its own length,
//! so a batch costs what its tokens cost. A batch is split across threads by messages; each
//! thread runs whole forward passes with no synchronisation between operations.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use candle_transformers::models::bert::Config;
use half::{bf16, f16};
use rayon::prelude::*;

use super::NluError;
use super::kernels::{self, PackedMatrix, QuantRows};

type Result<T> = std::result::Result<T, NluError>;

/// One tensor's entry in a safetensors header.
#[derive(serde::Deserialize)]
struct TensorInfo {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [u64; 2],
}

/// A safetensors file read tensor by tensor, converting to f32 as it goes: the whole file is
/// never in memory at once, so loading touches little more memory than the packed model
/// (start-up time here is mostly the kernel zeroing fresh pages).
struct Weights {
    path: PathBuf,
    file: File,
    data_start: u64,
    tensors: HashMap<String, TensorInfo>,
    prefix: &'static str,
}

impl Weights {
    fn open(path: &Path) -> Result<Self> {
        let err = |detail: String| NluError::ModelFiles {
            dir: path.to_path_buf(),
            detail,
        };
        let mut file = File::open(path).map_err(|e| err(e.to_string()))?;
        let mut len = [0u8; 8];
        file.read_exact(&mut len).map_err(|e| err(e.to_string()))?;
        let len = u64::from_le_bytes(len);
        if len > 100 << 20 {
            return Err(err(format!("safetensors header of {len} bytes")));
        }
        let mut header = vec![0u8; len as usize];
        file.read_exact(&mut header)
            .map_err(|e| err(e.to_string()))?;
        let raw: HashMap<String, serde_json::Value> =
            serde_json::from_slice(&header).map_err(|e| err(format!("header: {e}")))?;
        let mut tensors = HashMap::new();
        for (name, v) in raw {
            if name != "__metadata__" {
                let info = serde_json::from_value(v).map_err(|e| err(format!("{name}: {e}")))?;
                tensors.insert(name, info);
            }
        }
        let prefix = if tensors.contains_key("bert.embeddings.word_embeddings.weight") {
            "bert."
        } else {
            ""
        };
        Ok(Self {
            path: path.to_path_buf(),
            file,
            data_start: 8 + len,
            tensors,
            prefix,
        })
    }

    fn error(&self, detail: String) -> NluError {
        NluError::ModelFiles {
            dir: self.path.clone(),
            detail,
        }
    }

    /// Calls `each` with consecutive pieces of the tensor `name` (of the given shape) as f32,
    /// each a whole number of rows and at most about 16 MB.
    fn stream(&mut self, name: &str, shape: &[usize], mut each: impl FnMut(&[f32])) -> Result<()> {
        let full = format!("{}{name}", self.prefix);
        let info = self
            .tensors
            .get(&full)
            .ok_or_else(|| self.error(format!("missing tensor {full}")))?;
        if info.shape != shape {
            return Err(self.error(format!(
                "{full}: shape {:?}, expected {shape:?}",
                info.shape
            )));
        }
        let width: usize = match info.dtype.as_str() {
            "F32" => 4,
            "F16" | "BF16" => 2,
            other => return Err(self.error(format!("{full}: dtype {other} unsupported"))),
        };
        let dtype = info.dtype.clone();
        let count: usize = shape.iter().product();
        let [start, end] = info.data_offsets;
        if end - start != (count * width) as u64 {
            return Err(self.error(format!("{full}: data size does not match its shape")));
        }
        let row = shape.last().copied().unwrap_or(1).max(1);
        let rows_per_piece = ((16 << 20) / (row * width)).max(1);
        self.file
            .seek(SeekFrom::Start(self.data_start + start))
            .map_err(|e| self.error(e.to_string()))?;
        let mut bytes = Vec::new();
        let mut floats = Vec::new();
        let mut left = count;
        while left > 0 {
            let n = (rows_per_piece * row).min(left);
            bytes.resize(n * width, 0);
            self.file
                .read_exact(&mut bytes)
                .map_err(|e| self.error(format!("{full}: {e}")))?;
            floats.clear();
            match dtype.as_str() {
                "F32" => floats.extend(
                    bytes
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                ),
                "F16" => floats.extend(
                    bytes
                        .chunks_exact(2)
                        .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()),
                ),
                _ => floats.extend(
                    bytes
                        .chunks_exact(2)
                        .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()),
                ),
            }
            each(&floats);
            left -= n;
        }
        Ok(())
    }

    fn read(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(shape.iter().product());
        self.stream(name, shape, |piece| out.extend_from_slice(piece))?;
        Ok(out)
    }

    fn norm(&mut self, name: &str, dim: usize, eps: f64) -> Result<Norm> {
        Ok(Norm {
            weight: self.read(&format!("{name}.weight"), &[dim])?,
            bias: self.read(&format!("{name}.bias"), &[dim])?,
            eps: eps as f32,
        })
    }

    /// Several linear layers over the same input packed as one matrix (outputs
    /// concatenated), so one product serves them all (used for Q, K and V).
    fn linear(&mut self, names: &[&str], in_dim: usize, out_dim: usize) -> Result<PackedMatrix> {
        let mut weight = Vec::with_capacity(names.len() * out_dim * in_dim);
        let mut bias = Vec::with_capacity(names.len() * out_dim);
        for name in names {
            weight.extend(self.read(&format!("{name}.weight"), &[out_dim, in_dim])?);
            bias.extend(self.read(&format!("{name}.bias"), &[out_dim])?);
        }
        Ok(PackedMatrix::pack(
            &weight,
            &bias,
            names.len() * out_dim,
            in_dim,
        ))
    }
}

struct Norm {
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
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
    /// Word embeddings in f16: the table is most of the model (250k rows for XLM-R, 384 MB
    /// in f32, 192 MB so). i8 rows (96 MB) were measured too: banking77 accuracy fell from
    /// 93.64% to 93.31% and the product set's by 0.4 points, so f16 it is.
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
    /// Identifies these numerics (in embedding cache keys).
    pub const ENGINE: &'static str = "int8-kernels-v1-kb64";

    /// Loads a BERT-family `model.safetensors` (f32, f16 or bf16), quantising as it reads.
    /// With `keep` (ascending original ids, a pruned vocabulary's), only those rows of the
    /// word-embedding table are kept, renumbered `0..keep.len()` as the tokenizer numbers them.
    pub fn load(path: &Path, c: &Config, keep: Option<&[u32]>) -> Result<Self> {
        let mut w = Weights::open(path)?;
        let h = c.hidden_size;
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for i in 0..c.num_hidden_layers {
            let l = format!("encoder.layer.{i}");
            let a = format!("{l}.attention");
            layers.push(Layer {
                qkv: w.linear(
                    &[
                        &format!("{a}.self.query"),
                        &format!("{a}.self.key"),
                        &format!("{a}.self.value"),
                    ],
                    h,
                    h,
                )?,
                attn_out: w.linear(&[&format!("{a}.output.dense")], h, h)?,
                attn_norm: w.norm(&format!("{a}.output.LayerNorm"), h, c.layer_norm_eps)?,
                ff_in: w.linear(
                    &[&format!("{l}.intermediate.dense")],
                    h,
                    c.intermediate_size,
                )?,
                ff_out: w.linear(&[&format!("{l}.output.dense")], c.intermediate_size, h)?,
                out_norm: w.norm(&format!("{l}.output.LayerNorm"), h, c.layer_norm_eps)?,
            });
        }
        let rows = keep.map_or(c.vocab_size, <[u32]>::len);
        let mut word = Vec::with_capacity(rows * h);
        let mut next_row = 0usize;
        let mut wanted = keep.map(|k| k.iter().peekable());
        w.stream(
            "embeddings.word_embeddings.weight",
            &[c.vocab_size, h],
            |piece| {
                for row in piece.chunks_exact(h) {
                    let take = match wanted.as_mut() {
                        None => true,
                        Some(ids) => ids.next_if(|&&id| id as usize == next_row).is_some(),
                    };
                    if take {
                        word.extend(row.iter().map(|&v| f16::from_f32(v)));
                    }
                    next_row += 1;
                }
            },
        )?;
        if word.len() != rows * h {
            return Err(w.error(format!(
                "the tokenizer keeps ids beyond the embedding table's {} rows",
                c.vocab_size
            )));
        }
        let token_types = w.read(
            "embeddings.token_type_embeddings.weight",
            &[c.type_vocab_size, h],
        )?;
        Ok(Self {
            word,
            vocab: rows,
            position: w.read(
                "embeddings.position_embeddings.weight",
                &[c.max_position_embeddings, h],
            )?,
            max_positions: c.max_position_embeddings,
            token_type: token_types[..h].to_vec(),
            emb_norm: w.norm("embeddings.LayerNorm", h, c.layer_norm_eps)?,
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
