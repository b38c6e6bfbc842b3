//! A BERT encoder forward pass with 8-bit quantized linear layers (candle's Q8_0 `QMatMul`),
//! for low single-message latency on CPU. Attention, LayerNorm, GELU and the embeddings stay
//! in f32. The input width of every quantized matrix is zero-padded to a multiple of 256 (384
//! → 512), which is what candle's fastest CPU kernel needs; the padded activations are zeros,
//! so the products are unchanged. Sentence embeddings stay within cosine ≥ 0.998 of f32.

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{D, DType, Module, Result, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::Config;

/// Kernel-friendly input width.
const ALIGN: usize = 256;

struct QLinear {
    weight: QMatMul,
    bias: Tensor,
    in_dim: usize,
    padded: usize,
}

impl QLinear {
    fn load(vb: VarBuilder, in_dim: usize, out_dim: usize) -> Result<Self> {
        Self::fuse(&[vb], in_dim, out_dim)
    }

    /// Several linear layers over the same input as one matrix (outputs concatenated), so
    /// that one product (and one activation quantisation) serves them all.
    fn fuse(vbs: &[VarBuilder], in_dim: usize, out_dim: usize) -> Result<Self> {
        let weights = vbs
            .iter()
            .map(|vb| vb.get((out_dim, in_dim), "weight"))
            .collect::<Result<Vec<_>>>()?;
        let biases = vbs
            .iter()
            .map(|vb| vb.get(out_dim, "bias"))
            .collect::<Result<Vec<_>>>()?;
        let w = Tensor::cat(&weights, 0)?;
        let bias = Tensor::cat(&biases, 0)?;
        let padded = in_dim.div_ceil(ALIGN) * ALIGN;
        let w = if padded > in_dim {
            w.pad_with_zeros(1, 0, padded - in_dim)?
        } else {
            w
        };
        let weight = QMatMul::from_qtensor(QTensor::quantize(&w, GgmlDType::Q8_0)?)?;
        Ok(Self {
            weight,
            bias,
            in_dim,
            padded,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = if self.padded > self.in_dim {
            x.pad_with_zeros(D::Minus1, 0, self.padded - self.in_dim)?
        } else {
            x.clone()
        };
        self.weight.forward(&x)?.broadcast_add(&self.bias)
    }
}

struct Norm {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
}

impl Norm {
    fn load(vb: VarBuilder, dim: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            weight: vb.get(dim, "weight")?,
            bias: vb.get(dim, "bias")?,
            eps: eps as f32,
        })
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        candle_nn::ops::layer_norm(&x.contiguous()?, &self.weight, &self.bias, self.eps)
    }
}

struct Layer {
    /// Query, key and value projections fused.
    qkv: QLinear,
    attn_out: QLinear,
    attn_norm: Norm,
    ff_in: QLinear,
    ff_out: QLinear,
    out_norm: Norm,
}

/// The quantized encoder.
pub struct QBert {
    word: Tensor,
    position: Tensor,
    token_type: Tensor,
    emb_norm: Norm,
    layers: Vec<Layer>,
    heads: usize,
    hidden: usize,
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
                    qkv: QLinear::fuse(
                        &[a.pp("self.query"), a.pp("self.key"), a.pp("self.value")],
                        h,
                        h,
                    )?,
                    attn_out: QLinear::load(a.pp("output.dense"), h, h)?,
                    attn_norm: Norm::load(a.pp("output.LayerNorm"), h, c.layer_norm_eps)?,
                    ff_in: QLinear::load(l.pp("intermediate.dense"), h, c.intermediate_size)?,
                    ff_out: QLinear::load(l.pp("output.dense"), c.intermediate_size, h)?,
                    out_norm: Norm::load(l.pp("output.LayerNorm"), h, c.layer_norm_eps)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            word: e.get((c.vocab_size, h), "word_embeddings.weight")?,
            position: e.get((c.max_position_embeddings, h), "position_embeddings.weight")?,
            token_type: e.get((c.type_vocab_size, h), "token_type_embeddings.weight")?,
            emb_norm: Norm::load(e.pp("LayerNorm"), h, c.layer_norm_eps)?,
            layers,
            heads: c.num_attention_heads,
            hidden: h,
        })
    }

    /// Hidden states `(batch, tokens, hidden)` for token ids and a 0/1 attention mask.
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let h = self.hidden;
        let hd = h / self.heads;
        let words = self
            .word
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((b, t, h))?;
        let pos = self.position.narrow(0, 0, t)?;
        let typ = self.token_type.narrow(0, 0, 1)?;
        let mut x = self
            .emb_norm
            .forward(&words.broadcast_add(&pos)?.broadcast_add(&typ)?)?;
        // 0 where attended, a large negative number on padding.
        let bias = ((mask.to_dtype(DType::F32)? - 1.0)? * 1e4)?.reshape((b, 1, 1, t))?;
        let scale = 1.0 / (hd as f64).sqrt();
        for l in &self.layers {
            let split = |y: Tensor| -> Result<Tensor> {
                y.reshape((b, t, self.heads, hd))?
                    .transpose(1, 2)?
                    .contiguous()
            };
            let qkv = l.qkv.forward(&x)?;
            let q = split(qkv.narrow(2, 0, h)?)?;
            let k = split(qkv.narrow(2, h, h)?)?;
            let v = split(qkv.narrow(2, 2 * h, h)?)?;
            let scores = (q.matmul(&k.t()?)? * scale)?.broadcast_add(&bias)?;
            let probs = candle_nn::ops::softmax_last_dim(&scores)?;
            let ctx = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, t, h))?;
            x = l.attn_norm.forward(&(l.attn_out.forward(&ctx)? + &x)?)?;
            let ff = l.ff_in.forward(&x)?.gelu_erf()?;
            x = l.out_norm.forward(&(l.ff_out.forward(&ff)? + &x)?)?;
        }
        Ok(x)
    }
}
