//! How the Settings screen lays out a template's parameters: which are **Basic** (what Create ML
//! shows — iterations, augmentations, the validation share, the algorithm or backbone), which
//! apply at all with the values chosen so far (no MLP fields for a logistic head, no fine-tuning
//! fields unless fine-tuning), which are shares shown as percentages, and which devices this
//! build can train on. Pure functions over keys and values, so tests check them without a window.

use lathe_engine::params::ParamValue;

/// The Basic parameters of each template, in the order the engine lists them; the rest are
/// Advanced. A template this table does not know shows every parameter as Basic.
fn basic_keys(template: &str) -> Option<&'static [&'static str]> {
    const IMAGE: &[&str] = &[
        "labels_file",
        "backbone",
        "epochs",
        "validation_split",
        "augment_flip",
        "augment_rotate",
        "augment_crop",
        "augment_exposure",
        "augment_blur",
        "augment_noise",
    ];
    Some(match template {
        "image-classifier" | "multi-label-image-classifier" => IMAGE,
        "object-detector" => &[
            "epochs",
            "validation_split",
            "augment_crop",
            "augment_flip",
            "augment_color",
        ],
        "sound-classifier" => &[
            "algorithm",
            "transfer_epochs",
            "window_overlap",
            "epochs",
            "validation_split",
            "augment_noise",
            "augment_gain",
            "augment_time_shift",
            "augment_speed",
        ],
        "tabular-classifier" | "tabular-regressor" => {
            &["target", "ignore_columns", "validation_split", "algorithm"]
        }
        "text-classifier" => &[
            "algorithm",
            "text_column",
            "target",
            "validation_split",
            "max_iterations",
            "epochs",
        ],
        "activity-classifier" => &[
            "algorithm",
            "prediction_window",
            "validation_split",
            "epochs",
            "augment",
        ],
        _ => return None,
    })
}

/// Whether `key` is in the Basic section of `template`'s settings.
pub fn is_basic(template: &str, key: &str) -> bool {
    basic_keys(template).is_none_or(|keys| keys.contains(&key))
}

/// Whether `key` matters with the values chosen so far (`value` gives a parameter's current
/// value): a field that cannot change the model is hidden. A value that could pick the thing a
/// field tunes (`auto` may choose the MLP) keeps it shown.
pub fn applies(template: &str, key: &str, value: &dyn Fn(&str) -> Option<ParamValue>) -> bool {
    let text = |k: &str| match value(k) {
        Some(ParamValue::Text(t)) => t,
        _ => String::new(),
    };
    let int = |k: &str| match value(k) {
        Some(ParamValue::Int(i)) => i,
        _ => 0,
    };
    // `algorithm` is one of `these` (or `auto`, which may choose any of them).
    let algorithm_in = |k: &str, these: &[&str]| {
        let a = text(k);
        a.is_empty() || a == "auto" || these.contains(&a.as_str())
    };
    match (template, key) {
        ("image-classifier" | "multi-label-image-classifier", "mlp_hidden" | "dropout") => {
            text("head") != "logistic"
        }
        (
            "image-classifier" | "object-detector",
            "fine_tune_epochs" | "fine_tune_learning_rate" | "fine_tune_batch_size",
        ) => int("fine_tune_blocks") > 0,
        ("sound-classifier", "transfer_head" | "transfer_epochs") => text("algorithm") != "cnn",
        ("sound-classifier", "weights") => algorithm_in("algorithm", &["transfer"]),
        ("sound-classifier", "whisper_weights") => algorithm_in("algorithm", &["whisper"]),
        (
            "sound-classifier",
            "cnn_width" | "dropout" | "epochs" | "batch_size" | "learning_rate" | "weight_decay",
        ) => algorithm_in("algorithm", &["cnn"]),
        ("tabular-classifier" | "tabular-regressor", k) => {
            let family = match k {
                "max_iterations" | "learning_rate" | "max_leaf_nodes" | "max_depth"
                | "min_samples_leaf" | "l2_regularization" | "max_bins" => "boosted_trees",
                "linear_l2" | "linear_iterations" => "linear",
                "forest_trees" | "forest_max_leaf_nodes" | "forest_max_features" => "random_forest",
                "mlp_hidden" | "mlp_epochs" | "mlp_batch_size" | "mlp_learning_rate" => "mlp",
                "cv_folds" => "auto",
                _ => return true,
            };
            algorithm_in("algorithm", &[family])
        }
        (
            "text-classifier",
            "max_features"
            | "min_count"
            | "word_ngrams"
            | "char_ngram_min"
            | "char_ngram_max"
            | "regularization"
            | "choose_regularization"
            | "max_iterations",
        ) => algorithm_in("algorithm", &["maxent"]),
        (
            "text-classifier",
            "encoder"
            | "head"
            | "epochs"
            | "batch_size"
            | "learning_rate"
            | "weight_decay"
            | "embedding_batch_size",
        ) => algorithm_in("algorithm", &["transfer"]),
        ("text-classifier", "mlp_hidden" | "dropout") => {
            algorithm_in("algorithm", &["transfer"]) && text("head") != "logistic"
        }
        (
            "activity-classifier",
            "cnn_width"
            | "dropout"
            | "epochs"
            | "batch_size"
            | "learning_rate"
            | "weight_decay"
            | "early_stopping_patience"
            | "augment",
        ) => algorithm_in("algorithm", &["cnn"]),
        ("activity-classifier", "max_iterations") => algorithm_in("algorithm", &["boosted_trees"]),
        _ => true,
    }
}

/// Shares of the data, of a window or of a layer's units, shown and edited as percentages
/// (0.1 → "10 %").
pub fn is_share(key: &str) -> bool {
    matches!(key, "validation_split" | "window_overlap" | "dropout")
}

/// A share as the form shows it: 0.1 → 10.0 (percent).
pub fn to_percent(share: f64) -> f64 {
    (share * 100.0 * 1e6).round() / 1e6
}

/// A percent typed in the form back to the share the engine takes: 10.0 → 0.1.
pub fn from_percent(percent: f64) -> f64 {
    (percent / 100.0 * 1e9).round() / 1e9
}

/// A percentage as the form writes it: "10", "12.5" (one decimal at most).
pub fn percent_text(percent: f64) -> String {
    let rounded = (percent * 10.0).round() / 10.0;
    if rounded == rounded.trunc() {
        format!("{rounded:.0}")
    } else {
        format!("{rounded:.1}")
    }
}

/// The devices this build can train on, as the Device menu lists them: `cpu` always; `cuda` and
/// `metal` only when the engine was built with them and a device opens (the engine's own
/// [`lathe_engine::device::open`]); `auto` only when there is a GPU to choose.
pub fn usable_devices() -> Vec<String> {
    let mut devices = vec!["cpu".to_string()];
    for gpu in ["cuda", "metal"] {
        if lathe_engine::device::open(gpu).is_ok() {
            devices.push(gpu.to_string());
        }
    }
    if devices.len() > 1 {
        devices.insert(0, "auto".to_string());
    }
    devices
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_trip() {
        for share in [0.0, 0.1, 0.15, 0.2, 0.333, 0.5, 0.9] {
            assert_eq!(from_percent(to_percent(share)), share);
        }
        assert_eq!(to_percent(0.1), 10.0);
        assert_eq!(percent_text(to_percent(0.1)), "10");
        assert_eq!(percent_text(12.5), "12.5");
        // Shares of data, of a window and of a layer's units; not counts or rates.
        for key in ["validation_split", "window_overlap", "dropout"] {
            assert!(is_share(key), "{key}");
        }
        for key in ["learning_rate", "weight_decay", "epochs"] {
            assert!(!is_share(key), "{key}");
        }
    }

    #[test]
    fn mlp_fields_follow_the_head() {
        let logistic = |k: &str| (k == "head").then(|| ParamValue::Text("logistic".into()));
        let auto = |k: &str| (k == "head").then(|| ParamValue::Text("auto".into()));
        assert!(!applies("image-classifier", "mlp_hidden", &logistic));
        assert!(applies("image-classifier", "mlp_hidden", &auto));
        assert!(applies("image-classifier", "epochs", &logistic));
        let linear = |k: &str| (k == "algorithm").then(|| ParamValue::Text("linear".into()));
        assert!(!applies("tabular-classifier", "mlp_hidden", &linear));
        assert!(!applies("tabular-classifier", "forest_trees", &linear));
        assert!(applies("tabular-classifier", "linear_l2", &linear));
        assert!(applies("tabular-classifier", "target", &linear));
    }

    #[test]
    fn the_cpu_is_always_offered() {
        let devices = usable_devices();
        assert!(devices.contains(&"cpu".to_string()));
        assert_eq!(devices.contains(&"auto".to_string()), devices.len() > 1);
    }
}
