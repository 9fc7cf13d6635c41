//! The AdamW update of one parameter slice for the table MLP (`mlp_net`): moments, bias
//! correction, decoupled weight decay — the same arithmetic as `ops::adamw_fused`'s CPU loop —
//! eight values at a time with AVX where the CPU has it. Our crate builds at opt-level 1 in
//! dev and test builds, where the scalar loop is not vectorized and its square root and
//! division took a fifth of the MLP's training time. Both paths do the same operations in the
//! same order (no fused multiply-add), so they give the same numbers.

/// The update of one step: learning rate, bias corrections 1 / (1 − βᵗ), betas.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ParamUpdate {
    pub learning_rate: f32,
    pub scale_m: f32,
    pub scale_v: f32,
    pub beta1: f32,
    pub beta2: f32,
}

const EPS: f32 = 1e-8;

impl ParamUpdate {
    /// Updates parameters `p` and their moments `m`, `v` from gradients `g`; `decay` multiplies
    /// the parameters first (1 − learning rate × weight decay, or 1).
    pub(crate) fn apply(&self, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], decay: f32) {
        let done = self.apply_simd(p, g, m, v, decay);
        self.apply_scalar(
            p.get_mut(done..).unwrap_or(&mut []),
            g.get(done..).unwrap_or(&[]),
            m.get_mut(done..).unwrap_or(&mut []),
            v.get_mut(done..).unwrap_or(&mut []),
            decay,
        );
    }

    fn apply_scalar(&self, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], decay: f32) {
        let (b1, b2) = (self.beta1, self.beta2);
        for (((p, g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            let update = (*m * self.scale_m) / ((*v * self.scale_v).sqrt() + EPS);
            *p = *p * decay - self.learning_rate * update;
        }
    }

    /// The leading multiple of eight values with AVX; returns how many were updated.
    #[cfg(target_arch = "x86_64")]
    fn apply_simd(
        &self,
        p: &mut [f32],
        g: &[f32],
        m: &mut [f32],
        v: &mut [f32],
        decay: f32,
    ) -> usize {
        if !std::arch::is_x86_feature_detected!("avx") {
            return 0;
        }
        let n = p.len().min(g.len()).min(m.len()).min(v.len()) / 8 * 8;
        // SAFETY: AVX is present (checked above), and every pointer offset stays below `n`,
        // within each slice.
        #[allow(unsafe_code)]
        unsafe {
            self.avx(
                p.as_mut_ptr(),
                g.as_ptr(),
                m.as_mut_ptr(),
                v.as_mut_ptr(),
                n,
                decay,
            );
        }
        n
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn apply_simd(&self, _: &mut [f32], _: &[f32], _: &mut [f32], _: &mut [f32], _: f32) -> usize {
        0
    }

    /// [`Self::apply_scalar`]'s operations, in its order, on `n` (a multiple of 8) values.
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    #[target_feature(enable = "avx")]
    unsafe fn avx(
        &self,
        p: *mut f32,
        g: *const f32,
        m: *mut f32,
        v: *mut f32,
        n: usize,
        decay: f32,
    ) {
        use std::arch::x86_64::*;
        let b1 = _mm256_set1_ps(self.beta1);
        let c1 = _mm256_set1_ps(1.0 - self.beta1);
        let b2 = _mm256_set1_ps(self.beta2);
        let c2 = _mm256_set1_ps(1.0 - self.beta2);
        let scale_m = _mm256_set1_ps(self.scale_m);
        let scale_v = _mm256_set1_ps(self.scale_v);
        let eps = _mm256_set1_ps(EPS);
        let lr = _mm256_set1_ps(self.learning_rate);
        let decay = _mm256_set1_ps(decay);
        let mut i = 0;
        while i < n {
            // SAFETY: i + 8 ≤ n, within every slice (the caller's contract).
            unsafe {
                let gi = _mm256_loadu_ps(g.add(i));
                let mi = _mm256_add_ps(
                    _mm256_mul_ps(b1, _mm256_loadu_ps(m.add(i))),
                    _mm256_mul_ps(c1, gi),
                );
                let vi = _mm256_add_ps(
                    _mm256_mul_ps(b2, _mm256_loadu_ps(v.add(i))),
                    _mm256_mul_ps(_mm256_mul_ps(c2, gi), gi),
                );
                let update = _mm256_div_ps(
                    _mm256_mul_ps(mi, scale_m),
                    _mm256_add_ps(_mm256_sqrt_ps(_mm256_mul_ps(vi, scale_v)), eps),
                );
                let pi = _mm256_sub_ps(
                    _mm256_mul_ps(_mm256_loadu_ps(p.add(i)), decay),
                    _mm256_mul_ps(lr, update),
                );
                _mm256_storeu_ps(m.add(i), mi);
                _mm256_storeu_ps(v.add(i), vi);
                _mm256_storeu_ps(p.add(i), pi);
            }
            i += 8;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// The vector path gives the scalar loop's numbers bit for bit (19 values: two vectors and
    /// a scalar tail).
    #[test]
    fn vector_and_scalar_paths_agree_exactly() {
        let u = ParamUpdate {
            learning_rate: 1e-3,
            scale_m: 1.0 / (1.0 - 0.9f32.powi(3)),
            scale_v: 1.0 / (1.0 - 0.999f32.powi(3)),
            beta1: 0.9,
            beta2: 0.999,
        };
        let values = |k: usize| -> Vec<f32> {
            (0..19)
                .map(|i| ((i * k % 23) as f32 - 11.0) / 7.0)
                .collect()
        };
        let (mut p1, g, mut m1, mut v1) = (values(3), values(5), values(7), values(11));
        v1.iter_mut().for_each(|x| *x = x.abs());
        let (mut p2, mut m2, mut v2) = (p1.clone(), m1.clone(), v1.clone());
        u.apply(&mut p1, &g, &mut m1, &mut v1, 0.99);
        u.apply_scalar(&mut p2, &g, &mut m2, &mut v2, 0.99);
        assert_eq!((p1, m1, v1), (p2, m2, v2));
    }
}
