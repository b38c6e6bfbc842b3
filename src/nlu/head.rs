//! The trained classification head: multinomial logistic regression over the sentence
//! embedding and the sparse TF-IDF features, trained with candle-nn's AdamW on minibatches.
//! Training is deterministic for a fixed seed (zero initialisation, seeded shuffling).
//! Inference needs only the learned matrices, so it runs as plain Rust loops.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::NluError;
use super::features::SparseVec;

/// Training knobs of the head.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeadParams {
    pub epochs: usize,
    pub batch_size: usize,
    /// Initial Adam learning rate, decayed linearly to zero.
    pub learning_rate: f64,
    /// Inverse L2 strength, as scikit-learn's `C`: the loss is the mean cross-entropy plus
    /// `‖W‖² / (2·C·n)`. Larger means less regularisation.
    pub c: f64,
    /// Factor on the sentence embedding (unit length) before the head, balancing it against
    /// the two unit-length TF-IDF blocks.
    pub dense_scale: f32,
    pub seed: u64,
}

impl Default for HeadParams {
    fn default() -> Self {
        Self {
            epochs: 40,
            batch_size: 256,
            learning_rate: 0.05,
            c: 10.0,
            dense_scale: 3.0,
            seed: 0,
        }
    }
}

/// One training row: the dense embedding, the sparse features and the class index.
pub struct Row<'a> {
    pub dense: &'a [f32],
    pub sparse: &'a SparseVec,
}

/// Learned weights, row-major: `dense` is `dim × classes`, `sparse` is `features × classes`.
#[derive(Debug, Clone)]
pub struct Head {
    pub classes: usize,
    pub dim: usize,
    pub features: usize,
    pub dense: Vec<f32>,
    pub sparse: Vec<f32>,
    pub bias: Vec<f32>,
}

impl Head {
    /// Trains the head. `progress` receives the finished epoch count.
    pub fn train(
        rows: &[Row<'_>],
        labels: &[u32],
        classes: usize,
        features: usize,
        params: &HeadParams,
        progress: &dyn Fn(usize),
    ) -> Result<Self, NluError> {
        if rows.is_empty() || classes < 2 {
            return Err(NluError::Training(
                "need examples of at least two intents".into(),
            ));
        }
        let dim = rows[0].dense.len();
        let dev = Device::Cpu;
        let w_dense = Var::zeros((dim, classes), DType::F32, &dev)?;
        let w_sparse = Var::zeros((features.max(1), classes), DType::F32, &dev)?;
        let bias = Var::zeros(classes, DType::F32, &dev)?;
        let mut opt = AdamW::new(
            vec![w_dense.clone(), w_sparse.clone(), bias.clone()],
            ParamsAdamW {
                lr: params.learning_rate,
                weight_decay: 0.0,
                ..Default::default()
            },
        )?;
        let l2 = 1.0 / (2.0 * params.c.max(1e-9) * rows.len() as f64);
        let batch_size = params.batch_size.max(1);
        let total_steps = params.epochs * rows.len().div_ceil(batch_size);
        let mut step = 0usize;
        let mut rng = rand::rngs::StdRng::seed_from_u64(params.seed);
        let mut order: Vec<usize> = (0..rows.len()).collect();
        for epoch in 0..params.epochs {
            order.shuffle(&mut rng);
            for batch in order.chunks(batch_size) {
                opt.set_learning_rate(
                    params.learning_rate * (1.0 - step as f64 / total_steps as f64),
                );
                step += 1;
                let b = batch.len();
                let mut dense = Vec::with_capacity(b * dim);
                let mut y = Vec::with_capacity(b);
                // The features present in this batch, each once: the batch only touches these
                // rows of the sparse weights, so it works on a small dense slice of them.
                let mut present: Vec<u32> = batch
                    .iter()
                    .flat_map(|&i| rows[i].sparse.indices.iter().copied())
                    .collect();
                present.sort_unstable();
                present.dedup();
                let mut x_sparse = vec![0f32; b * present.len()];
                for (k, &i) in batch.iter().enumerate() {
                    dense.extend(rows[i].dense.iter().map(|v| v * params.dense_scale));
                    y.push(labels[i]);
                    for (&f, &v) in rows[i].sparse.indices.iter().zip(&rows[i].sparse.values) {
                        let col = present.binary_search(&f).expect("feature collected above");
                        x_sparse[k * present.len() + col] = v;
                    }
                }
                let x = Tensor::from_vec(dense, (b, dim), &dev)?;
                let mut logits = x
                    .matmul(w_dense.as_tensor())?
                    .broadcast_add(bias.as_tensor())?;
                if !present.is_empty() {
                    let u = present.len();
                    let idx = Tensor::from_vec(present, u, &dev)?;
                    let xs = Tensor::from_vec(x_sparse, (b, u), &dev)?;
                    let w_rows = w_sparse.as_tensor().index_select(&idx, 0)?;
                    logits = (logits + xs.matmul(&w_rows)?)?;
                }
                let y = Tensor::from_vec(y, b, &dev)?;
                let penalty = (w_dense.as_tensor().sqr()?.sum_all()?
                    + w_sparse.as_tensor().sqr()?.sum_all()?)?;
                let loss = (candle_nn::loss::cross_entropy(&logits, &y)? + (penalty * l2)?)?;
                opt.backward_step(&loss)?;
            }
            progress(epoch + 1);
        }
        // Fold the input scale into the weights, so inference takes raw embeddings.
        let dense_w = (w_dense.as_tensor() * f64::from(params.dense_scale))?;
        Ok(Self {
            classes,
            dim,
            features,
            dense: dense_w.flatten_all()?.to_vec1()?,
            sparse: w_sparse.as_tensor().flatten_all()?.to_vec1()?,
            bias: bias.as_tensor().to_vec1()?,
        })
    }

    /// Raw logits for one message.
    pub fn logits(&self, dense: &[f32], sparse: &SparseVec) -> Vec<f32> {
        let c = self.classes;
        let mut out = self.bias.clone();
        for (i, &x) in dense.iter().enumerate().take(self.dim) {
            let row = &self.dense[i * c..(i + 1) * c];
            for (o, w) in out.iter_mut().zip(row) {
                *o += x * w;
            }
        }
        for (&i, &x) in sparse.indices.iter().zip(&sparse.values) {
            let i = i as usize;
            if i < self.features {
                let row = &self.sparse[i * c..(i + 1) * c];
                for (o, w) in out.iter_mut().zip(row) {
                    *o += x * w;
                }
            }
        }
        out
    }

    /// The tensors to persist, by name.
    pub fn to_tensors(&self) -> Result<Vec<(String, Tensor)>, NluError> {
        let dev = Device::Cpu;
        Ok(vec![
            (
                "head.dense".into(),
                Tensor::from_slice(&self.dense, (self.dim, self.classes), &dev)?,
            ),
            (
                "head.sparse".into(),
                Tensor::from_slice(&self.sparse, (self.features.max(1), self.classes), &dev)?,
            ),
            (
                "head.bias".into(),
                Tensor::from_slice(&self.bias, self.classes, &dev)?,
            ),
        ])
    }

    /// Rebuilds a head from persisted tensors.
    pub fn from_tensors(
        tensors: &std::collections::HashMap<String, Tensor>,
    ) -> Result<Self, NluError> {
        let get = |name: &str| {
            tensors
                .get(name)
                .ok_or_else(|| NluError::HeadFormat(format!("missing tensor {name}")))
        };
        let dense = get("head.dense")?;
        let sparse = get("head.sparse")?;
        let (dim, classes) = dense.dims2()?;
        let (features, c2) = sparse.dims2()?;
        if c2 != classes {
            return Err(NluError::HeadFormat("class count mismatch".into()));
        }
        Ok(Self {
            classes,
            dim,
            features,
            dense: dense.flatten_all()?.to_vec1()?,
            sparse: sparse.flatten_all()?.to_vec1()?,
            bias: get("head.bias")?.to_vec1()?,
        })
    }
}

/// Softmax with temperature, numerically stable.
pub fn softmax(logits: &[f32], temperature: f32) -> Vec<f32> {
    let t = if temperature > 0.0 { temperature } else { 1.0 };
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|&l| ((l - max) / t).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.iter().map(|e| e / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_separable_problem_deterministically() {
        let a = SparseVec {
            indices: vec![0],
            values: vec![1.0],
        };
        let b = SparseVec {
            indices: vec![1],
            values: vec![1.0],
        };
        let dense_a = [1.0f32, 0.0];
        let dense_b = [0.0f32, 1.0];
        let rows: Vec<Row> = (0..20)
            .map(|i| {
                if i % 2 == 0 {
                    Row {
                        dense: &dense_a,
                        sparse: &a,
                    }
                } else {
                    Row {
                        dense: &dense_b,
                        sparse: &b,
                    }
                }
            })
            .collect();
        let labels: Vec<u32> = (0..20).map(|i| i % 2).collect();
        let params = HeadParams {
            epochs: 20,
            batch_size: 4,
            ..Default::default()
        };
        let h1 = Head::train(&rows, &labels, 2, 2, &params, &|_| {}).unwrap();
        let h2 = Head::train(&rows, &labels, 2, 2, &params, &|_| {}).unwrap();
        assert_eq!(h1.dense, h2.dense);
        let pa = softmax(&h1.logits(&dense_a, &a), 1.0);
        let pb = softmax(&h1.logits(&dense_b, &b), 1.0);
        assert!(pa[0] > 0.9 && pb[1] > 0.9, "{pa:?} {pb:?}");
    }

    #[test]
    fn softmax_sums_to_one_and_handles_extremes() {
        let p = softmax(&[1000.0, -1000.0, 0.0], 1.0);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert!(p[0] > 0.999);
    }
}
