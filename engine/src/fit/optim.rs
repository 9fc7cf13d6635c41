//! AdamW with decoupled weight decay, whose moments can be saved in checkpoints (candle's own
//! AdamW keeps them private), and the learning-rate schedule (linear warm-up, cosine decay).

use crate::ops::adamw_fused::{MomentsStep, ParamStep};
use candle_core::backprop::GradStore;
use candle_core::{DType, Result, Tensor, Var};

/// AdamW over a fixed list of variables.
pub struct AdamW {
    vars: Vec<Var>,
    /// Apply weight decay to this variable (weights yes, biases and norms no).
    decay: Vec<bool>,
    /// Each variable's first and second moments, packed as `[2, elements]` in its dtype.
    moments: Vec<Tensor>,
    pub step: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
}

impl AdamW {
    /// `vars` with a decay flag each.
    pub fn new(vars: Vec<(Var, bool)>, learning_rate: f64, weight_decay: f64) -> Result<Self> {
        let moments = vars
            .iter()
            .map(|(v, _)| Tensor::zeros((2, v.elem_count()), v.dtype(), v.device()))
            .collect::<Result<Vec<_>>>()?;
        let (vars, decay) = vars.into_iter().unzip();
        Ok(Self {
            vars,
            decay,
            moments,
            step: 0,
            learning_rate,
            weight_decay,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        })
    }

    pub fn apply(&mut self, grads: &GradStore) -> Result<()> {
        self.step += 1;
        let t = self.step as i32;
        let (b1, b2, lr) = (self.beta1, self.beta2, self.learning_rate);
        let scale_m = 1.0 / (1.0 - b1.powi(t));
        let scale_v = 1.0 / (1.0 - b2.powi(t));
        for i in 0..self.vars.len() {
            let var = &self.vars[i];
            let Some(g) = grads.get(var) else { continue };
            // candle's gradient of a variable can still carry the backprop graph of the step
            // (e.g. `grad · activation` for a layer after another trainable layer). Keeping it
            // in the moments would chain every step's activations to the next: detach.
            let g = g.detach().to_dtype(var.dtype())?;
            let decay = if self.decay[i] && self.weight_decay > 0.0 {
                1.0 - lr * self.weight_decay
            } else {
                1.0
            };
            if var.dtype() == DType::F32 && var.is_contiguous() {
                // Two in-place passes (one kernel each on CUDA) instead of a dozen tensor ops.
                let g = g.contiguous()?.flatten_all()?;
                self.moments[i].inplace_op2(
                    &g,
                    &MomentsStep {
                        beta1: b1 as f32,
                        beta2: b2 as f32,
                    },
                )?;
                var.as_tensor().inplace_op2(
                    &self.moments[i],
                    &ParamStep {
                        learning_rate: lr as f32,
                        decay: decay as f32,
                        scale_m: scale_m as f32,
                        scale_v: scale_v as f32,
                        eps: self.eps as f32,
                    },
                )?;
                continue;
            }
            let (m, v) = self.split(i)?;
            let m = ((m * b1)? + (&g * (1.0 - b1))?)?;
            let v = ((v * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            let update = ((&m * scale_m)? / ((&v * scale_v)?.sqrt()? + self.eps)?)?;
            let theta = (var.as_tensor() * decay)?;
            var.set(&(theta - (update * lr)?)?)?;
            self.moments[i] = Tensor::stack(&[m.flatten_all()?, v.flatten_all()?], 0)?.detach();
        }
        Ok(())
    }

    /// Variable `i`'s moments `(m, v)` in its shape.
    fn split(&self, i: usize) -> Result<(Tensor, Tensor)> {
        let shape = self.vars[i].shape();
        let mv = &self.moments[i];
        Ok((mv.get(0)?.reshape(shape)?, mv.get(1)?.reshape(shape)?))
    }

    /// Moments as named tensors for a checkpoint.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for i in 0..self.vars.len() {
            if let Ok((m, v)) = self.split(i) {
                out.push((format!("optimizer.m.{i}"), m));
                out.push((format!("optimizer.v.{i}"), v));
            }
        }
        out
    }

    /// Restores moments saved by [`AdamW::state`].
    pub fn load_state(
        &mut self,
        tensors: &std::collections::HashMap<String, Tensor>,
        step: usize,
    ) -> Result<()> {
        for i in 0..self.vars.len() {
            if let (Some(m), Some(v)) = (
                tensors.get(&format!("optimizer.m.{i}")),
                tensors.get(&format!("optimizer.v.{i}")),
            ) {
                let var = &self.vars[i];
                let flat = |t: &Tensor| -> Result<Tensor> {
                    t.to_device(var.device())?
                        .to_dtype(var.dtype())?
                        .flatten_all()
                };
                let (m, v) = (flat(m)?, flat(v)?);
                if m.elem_count() != var.elem_count() || v.elem_count() != var.elem_count() {
                    candle_core::bail!(
                        "checkpoint: optimizer moments {i} have {} values, the parameter {}",
                        m.elem_count(),
                        var.elem_count()
                    )
                }
                self.moments[i] = Tensor::stack(&[m, v], 0)?;
            }
        }
        self.step = step;
        Ok(())
    }
}

/// Learning rate at `step` of `total`: linear warm-up over `warmup` steps, then cosine to 1 %.
pub fn cosine_lr(base: f64, step: usize, total: usize, warmup: usize) -> f64 {
    if step < warmup {
        return base * (step + 1) as f64 / warmup as f64;
    }
    let span = total.saturating_sub(warmup).max(1) as f64;
    let progress = ((step - warmup) as f64 / span).min(1.0);
    let floor = 0.01 * base;
    floor + (base - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn minimizes_a_quadratic_and_schedule_is_shaped() {
        let x = Var::new(&[3f32, -2.0], &Device::Cpu).unwrap();
        let mut opt = AdamW::new(vec![(x.clone(), false)], 0.1, 0.0).unwrap();
        for _ in 0..300 {
            let loss = x.as_tensor().sqr().unwrap().sum_all().unwrap();
            opt.apply(&loss.backward().unwrap()).unwrap();
        }
        let v: Vec<f32> = x.as_tensor().to_vec1().unwrap();
        assert!(v.iter().all(|a| a.abs() < 0.05), "{v:?}");
        assert!(cosine_lr(1.0, 0, 100, 10) < 0.2);
        assert!((cosine_lr(1.0, 10, 100, 10) - 1.0).abs() < 1e-9);
        assert!((cosine_lr(1.0, 100, 100, 10) - 0.01).abs() < 1e-9);
    }

    /// Two trainable layers in a row: the second's gradient carries the step's graph. The
    /// moments must not keep it, or every step's activations stay alive (the detector's
    /// training ran out of memory that way).
    #[test]
    fn moments_do_not_keep_the_backprop_graph() {
        let dev = Device::Cpu;
        let w1 = Var::new(&[[0.5f32, -0.3], [0.2, 0.1]], &dev).unwrap();
        let w2 = Var::new(&[[0.4f32], [-0.6]], &dev).unwrap();
        let x = Tensor::new(&[[1f32, 2.0], [3.0, -1.0]], &dev).unwrap();
        let mut opt = AdamW::new(vec![(w1.clone(), true), (w2.clone(), true)], 0.01, 0.01).unwrap();
        for _ in 0..3 {
            let loss = x
                .matmul(w1.as_tensor())
                .unwrap()
                .matmul(w2.as_tensor())
                .unwrap()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap();
            let grads = loss.backward().unwrap();
            assert!(
                grads.get(&w2).unwrap().track_op(),
                "the hazard this test guards against is gone from candle; keep the detach anyway"
            );
            opt.apply(&grads).unwrap();
            assert!(opt.moments.iter().all(|t| !t.track_op()));
        }
    }

    /// A few steps of `(w, decay)` pairs on `loss = Σ (w · c)²` with AdamW; returns the weights.
    fn run(dtype: DType, steps: usize, opt_state: Option<&AdamW>) -> (Vec<Vec<f64>>, AdamW) {
        let dev = Device::Cpu;
        let w1 = Var::from_tensor(
            &Tensor::new(&[[0.5f32, -0.3, 0.8], [0.2, 0.1, -1.5]], &dev)
                .unwrap()
                .to_dtype(dtype)
                .unwrap(),
        )
        .unwrap();
        let b = Var::from_tensor(
            &Tensor::new(&[0.3f32, -0.7], &dev)
                .unwrap()
                .to_dtype(dtype)
                .unwrap(),
        )
        .unwrap();
        let c = Tensor::new(&[[1f32, -2.0], [0.5, 3.0], [-1.0, 0.25]], &dev)
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        let mut opt = AdamW::new(vec![(w1.clone(), true), (b.clone(), false)], 0.05, 0.1).unwrap();
        if let Some(prev) = opt_state {
            let state: std::collections::HashMap<String, Tensor> =
                prev.state().into_iter().collect();
            opt.load_state(&state, prev.step).unwrap();
            w1.set(prev.vars[0].as_tensor()).unwrap();
            b.set(prev.vars[1].as_tensor()).unwrap();
        }
        for _ in 0..steps {
            let y = w1
                .as_tensor()
                .matmul(&c)
                .unwrap()
                .broadcast_add(b.as_tensor())
                .unwrap();
            let loss = y.sqr().unwrap().sum_all().unwrap();
            opt.apply(&loss.backward().unwrap()).unwrap();
        }
        let out = [&w1, &b]
            .iter()
            .map(|v| {
                v.as_tensor()
                    .flatten_all()
                    .unwrap()
                    .to_dtype(DType::F64)
                    .unwrap()
                    .to_vec1()
                    .unwrap()
            })
            .collect();
        (out, opt)
    }

    /// The fused f32 update (two in-place passes) computes what the tensor-op formula computes
    /// (run in f64 as the reference), with and without weight decay, and its checkpointed
    /// moments continue a run exactly.
    #[test]
    fn fused_update_matches_the_formula_and_resumes() {
        let (fused, _) = run(DType::F32, 6, None);
        let (reference, _) = run(DType::F64, 6, None);
        for (a, b) in fused.iter().flatten().zip(reference.iter().flatten()) {
            assert!((a - b).abs() < 1e-5, "fused {a} vs formula {b}");
        }
        let (_, first) = run(DType::F32, 3, None);
        let (resumed, _) = run(DType::F32, 3, Some(&first));
        assert_eq!(resumed, fused, "3 + 3 steps through a checkpoint = 6 steps");
    }
}
