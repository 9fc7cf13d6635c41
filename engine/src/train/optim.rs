//! AdamW with decoupled weight decay, whose moments can be saved in checkpoints (candle's own
//! AdamW keeps them private), and the learning-rate schedule (linear warm-up, cosine decay).

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

/// AdamW over a fixed list of variables.
pub struct AdamW {
    vars: Vec<Var>,
    /// Apply weight decay to this variable (weights yes, biases and norms no).
    decay: Vec<bool>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
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
        let m = vars
            .iter()
            .map(|(v, _)| v.zeros_like())
            .collect::<Result<Vec<_>>>()?;
        let v = vars
            .iter()
            .map(|(v, _)| v.zeros_like())
            .collect::<Result<Vec<_>>>()?;
        let (vars, decay) = vars.into_iter().unzip();
        Ok(Self {
            vars,
            decay,
            m,
            v,
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
            let m = ((&self.m[i] * b1)? + (&g * (1.0 - b1))?)?;
            let v = ((&self.v[i] * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            let update = ((&m * scale_m)? / ((&v * scale_v)?.sqrt()? + self.eps)?)?;
            let mut theta = var.as_tensor().clone();
            if self.decay[i] && self.weight_decay > 0.0 {
                theta = (theta * (1.0 - lr * self.weight_decay))?;
            }
            var.set(&(theta - (update * lr)?)?)?;
            self.m[i] = m.detach();
            self.v[i] = v.detach();
        }
        Ok(())
    }

    /// Moments as named tensors for a checkpoint.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for i in 0..self.vars.len() {
            out.push((format!("optimizer.m.{i}"), self.m[i].clone()));
            out.push((format!("optimizer.v.{i}"), self.v[i].clone()));
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
                self.m[i] = m.clone();
                self.v[i] = v.clone();
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
            assert!(opt.m.iter().chain(&opt.v).all(|t| !t.track_op()));
        }
    }
}
