//! Classifier heads trained on backbone features: multinomial logistic regression (the default)
//! or a one-hidden-layer MLP. Parameters are `Var`s; names follow torchvision's `classifier.N`.

use candle_core::{DType, Device, Result, Tensor, Var};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// The head's architecture, as written to `config.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HeadKind {
    /// `classifier.1`: Linear(features → classes).
    Logistic,
    /// `classifier.1`: Linear(features → hidden), ReLU, dropout, `classifier.4`: Linear(hidden → classes).
    Mlp { hidden: usize, dropout: f32 },
}

/// A trainable head.
pub struct Head {
    pub kind: HeadKind,
    /// (weight [out,in], bias [out]) per linear layer.
    pub layers: Vec<(Var, Var)>,
}

impl Head {
    /// Random initialization (PyTorch's default uniform ±1/√fan_in), seeded.
    pub fn new(
        kind: HeadKind,
        in_dim: usize,
        num_classes: usize,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x4EAD);
        let mut linear = |i: usize, o: usize| -> Result<(Var, Var)> {
            let bound = 1.0 / (i as f32).sqrt();
            let w: Vec<f32> = (0..i * o)
                .map(|_| rng.random_range(-bound..bound))
                .collect();
            let b: Vec<f32> = (0..o).map(|_| rng.random_range(-bound..bound)).collect();
            Ok((
                Var::from_tensor(&Tensor::from_vec(w, (o, i), device)?)?,
                Var::from_tensor(&Tensor::from_vec(b, o, device)?)?,
            ))
        };
        let layers = match &kind {
            HeadKind::Logistic => vec![linear(in_dim, num_classes)?],
            HeadKind::Mlp { hidden, .. } => {
                vec![linear(in_dim, *hidden)?, linear(*hidden, num_classes)?]
            }
        };
        Ok(Self { kind, layers })
    }

    /// Builds a head from exported tensors (`classifier.N.weight/bias`).
    pub fn from_tensors(
        kind: HeadKind,
        tensors: &std::collections::HashMap<String, Tensor>,
    ) -> Result<Self> {
        let mut layers = Vec::new();
        for name in Self::layer_names(&kind) {
            let get = |suffix: &str| -> Result<Var> {
                let t = tensors.get(&format!("{name}.{suffix}")).ok_or_else(|| {
                    candle_core::Error::Msg(format!("model has no tensor `{name}.{suffix}`"))
                })?;
                Var::from_tensor(&t.to_dtype(DType::F32)?)
            };
            layers.push((get("weight")?, get("bias")?));
        }
        Ok(Self { kind, layers })
    }

    /// torchvision-style names of the linear layers.
    pub fn layer_names(kind: &HeadKind) -> Vec<&'static str> {
        match kind {
            HeadKind::Logistic => vec!["classifier.1"],
            HeadKind::Mlp { .. } => vec!["classifier.1", "classifier.4"],
        }
    }

    /// Logits `[N, classes]`. Dropout is applied only when `train` and `rng_seed` is given.
    pub fn forward(&self, x: &Tensor, train: bool, dropout_seed: Option<u64>) -> Result<Tensor> {
        let mut y = x.clone();
        let last = self.layers.len() - 1;
        for (i, (w, b)) in self.layers.iter().enumerate() {
            y = y
                .matmul(&w.as_tensor().t()?)?
                .broadcast_add(b.as_tensor())?;
            if i < last {
                y = y.relu()?;
                if let (true, HeadKind::Mlp { dropout, .. }, Some(seed)) =
                    (train, &self.kind, dropout_seed)
                {
                    y = dropout_mask(&y, *dropout, seed)?;
                }
            }
        }
        Ok(y)
    }

    pub fn vars(&self) -> Vec<Var> {
        self.layers
            .iter()
            .flat_map(|(w, b)| [w.clone(), b.clone()])
            .collect()
    }

    /// Named tensors, with the input standardization `(x - mean) / std` folded into the first layer
    /// so the exported head works on raw backbone features.
    pub fn export_tensors(&self, mean: &Tensor, std: &Tensor) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        for (i, ((w, b), name)) in self
            .layers
            .iter()
            .zip(Self::layer_names(&self.kind))
            .enumerate()
        {
            let (w, b) = if i == 0 {
                let w2 = w.as_tensor().broadcast_div(&std.unsqueeze(0)?)?;
                let shift = w2.matmul(&mean.unsqueeze(1)?)?.squeeze(1)?;
                (w2, (b.as_tensor() - shift)?)
            } else {
                (w.as_tensor().clone(), b.as_tensor().clone())
            };
            out.push((format!("{name}.weight"), w.contiguous()?));
            out.push((format!("{name}.bias"), b.contiguous()?));
        }
        Ok(out)
    }
}

/// Inverted dropout with a seeded mask (deterministic runs).
pub(crate) fn dropout_mask(x: &Tensor, p: f32, seed: u64) -> Result<Tensor> {
    if p <= 0.0 {
        return Ok(x.clone());
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let n = x.elem_count();
    let keep = 1.0 - p;
    let mask: Vec<f32> = (0..n)
        .map(|_| {
            if rng.random::<f32>() < keep {
                1.0 / keep
            } else {
                0.0
            }
        })
        .collect();
    x * Tensor::from_vec(mask, x.shape(), x.device())?
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn folding_standardization_gives_the_same_logits() {
        let dev = Device::Cpu;
        let head = Head::new(
            HeadKind::Mlp {
                hidden: 8,
                dropout: 0.2,
            },
            5,
            3,
            1,
            &dev,
        )
        .unwrap();
        let x = Tensor::randn(0f32, 3., (4, 5), &dev).unwrap();
        let mean = Tensor::new(&[0.5f32, -1., 2., 0., 1.], &dev).unwrap();
        let std = Tensor::new(&[2f32, 1., 0.5, 3., 1.], &dev).unwrap();
        let z = x.broadcast_sub(&mean).unwrap().broadcast_div(&std).unwrap();
        let expect = head.forward(&z, false, None).unwrap();
        let tensors: std::collections::HashMap<String, Tensor> = head
            .export_tensors(&mean, &std)
            .unwrap()
            .into_iter()
            .collect();
        let exported = Head::from_tensors(head.kind.clone(), &tensors).unwrap();
        let got = exported.forward(&x, false, None).unwrap();
        let d = (got - expect)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(d < 1e-4, "{d}");
    }
}
