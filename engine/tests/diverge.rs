//! Divergence: a learning rate far beyond any sane value makes the loss NaN or infinite; training
//! must stop with `Error::Diverged` naming the epoch and the parameter to lower, keep the best
//! checkpoint of the epochs before, and never write NaN weights as a model. Checked on the head
//! fitter (`train::fit`, used by the image, multi-label, text and sound classifiers) and on the
//! MLP of the tabular classifier; the tabular logistic model (L-BFGS, line-searched) must stay
//! finite where a step-size solver would not. (The parameter ranges stop users from asking for such
//! learning rates, so these tests call the training code with the checked settings directly.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use candle_core::Device;
use lathe_engine::error::Error;
use lathe_engine::nets::head::HeadKind;
use lathe_engine::params::ResolvedParams;
use lathe_engine::project::Project;
use lathe_engine::train::context::Emitter;
use lathe_engine::train::fit::{self, Features, FitConfig};
use lathe_engine::train::{Control, RunContext, RunDir, RunOptions};
use std::path::Path;

fn context(root: &Path) -> RunContext {
    RunContext {
        project: Project::new("image-classifier", root.join("data")),
        params: ResolvedParams(Default::default()),
        run_dir: RunDir::create(&root.join("run")).unwrap(),
        device: Device::Cpu,
        control: Control::new(),
        emitter: Emitter::null(),
        options: RunOptions::default(),
        started: std::time::Instant::now(),
        resume: false,
    }
}

/// Two separable classes of 8-dimensional features.
fn features(n: usize) -> Features {
    let mut f = Features::new(8);
    for i in 0..n {
        let label = (i % 2) as u32;
        let row: Vec<f32> = (0..8)
            .map(|d| if label == 0 { 1.0 } else { -1.0 } * (1.0 + d as f32 * 0.1) + (i % 5) as f32 * 0.05)
            .collect();
        f.push(&row, label);
    }
    f
}

#[test]
fn head_fitting_stops_on_a_nan_loss_naming_the_epoch_and_keeps_the_best_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = context(tmp.path());
    let train = features(16);
    let cfg = FitConfig {
        head: HeadKind::Mlp {
            hidden: 16,
            dropout: 0.0,
        },
        epochs: 20,
        // One step per epoch, so the first epoch ends (and is checkpointed) before the weights
        // blow up.
        batch_size: 16,
        learning_rate: 1e30,
        weight_decay: 1e-2,
        patience: 0,
        seed: 1,
    };
    // Without validation data the first epoch's loss is measured before the weights blow up, so
    // epoch 1 ends normally (checkpointed as the best so far) and epoch 2 diverges. (With
    // validation data the overflowed weights show in epoch 1's validation loss, which stops the
    // run before that epoch is checkpointed.)
    let result = fit::fit(&ctx, &train, None, 2, &cfg);
    let Err(Error::Diverged(message)) = result else {
        panic!("expected divergence");
    };
    assert!(
        message.contains("training diverged: the loss became"),
        "{message}"
    );
    assert!(message.contains("at epoch 2;"), "{message}");
    assert!(
        message.contains("lower learning_rate (now 1e30, try 1e29)"),
        "{message}"
    );
    let best = ctx.run_dir.checkpoints().join("best.safetensors");
    assert!(best.is_file(), "the best checkpoint is kept");
    assert!(
        message.contains("the best checkpoint so far is kept in"),
        "{message}"
    );
    assert!(!ctx.run_dir.model().join("config.json").exists());
}

#[test]
fn head_fitting_with_a_sane_learning_rate_does_not_diverge() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = context(tmp.path());
    let cfg = FitConfig {
        head: HeadKind::Logistic,
        epochs: 5,
        batch_size: 16,
        learning_rate: 1e-2,
        weight_decay: 1e-4,
        patience: 0,
        seed: 1,
    };
    let out = fit::fit(&ctx, &features(16), None, 2, &cfg).unwrap();
    assert_eq!(out.history.len(), 5);
}

#[test]
fn validation_loss_that_overflows_stops_the_run_in_that_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = context(tmp.path());
    let cfg = FitConfig {
        head: HeadKind::Mlp {
            hidden: 16,
            dropout: 0.0,
        },
        epochs: 20,
        batch_size: 16,
        learning_rate: 1e30,
        weight_decay: 1e-2,
        patience: 0,
        seed: 1,
    };
    let result = fit::fit(&ctx, &features(16), Some(&features(6)), 2, &cfg);
    let Err(Error::Diverged(message)) = result else {
        panic!("expected divergence");
    };
    assert!(message.contains("at epoch 1;"), "{message}");
    assert!(!ctx.run_dir.checkpoints().join("best.safetensors").exists());
}

#[test]
fn logistic_glm_stays_finite_on_badly_scaled_inputs() {
    // The table logistic model is fitted by L-BFGS with a line search (no learning rate to set
    // too high): on inputs a thousand times larger than the others it must neither diverge nor
    // fail, and must still separate the classes.
    use lathe_engine::learners::glm::{self, LogisticParams};
    let dim = 3;
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for i in 0..40 {
        let c = i % 2;
        let s = if c == 0 { 1.0 } else { -1.0 };
        x.extend([s * (2.0 + (i % 7) as f64), s * 1e3, (i % 3) as f64]);
        y.push(c);
    }
    let params = LogisticParams {
        l2: 0.0,
        max_iterations: 50,
        patience: 0,
    };
    let mut losses = Vec::new();
    let m = glm::fit_logistic((&x, &y), None, dim, 2, &params, &mut |r| {
        losses.push(r.train_loss);
        Ok(())
    })
    .unwrap();
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
    assert!(losses.last().unwrap() < &0.05, "{losses:?}");
    let right = x
        .chunks(dim)
        .zip(&y)
        .filter(|&(row, &c)| {
            let z = m.raw(row);
            usize::from(z[1] > z[0]) == c
        })
        .count();
    assert_eq!(right, y.len());
}
