//! The Preview screen of every kind of model, headless, through AccessKit labels: each test
//! trains a tiny model in the app, then uses its Preview as a user would — typed text predicted
//! as you type, a table row picked or edited, a sound file's waveform, a detector's boxes over
//! the image, and a multi-label image with every label and the ones that apply marked.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    MINUTE, drop_paths, harness, options_with as options, penguins, train_in_app, wait_until,
};
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use lathe_engine::params::ParamValue;
use lathe_studio::{Screen, Studio};
use std::path::Path;

/// Trains a project from `template` in the app (see [`common::train_in_app`]) and opens the
/// Preview once the model is loaded.
fn train_and_preview(
    h: &mut Harness<'_, Studio>,
    template: &str,
    train: &Path,
    test: Option<&Path>,
    params: &[(&str, ParamValue)],
) {
    train_in_app(h, template, train, test, params);
    h.get_by_label("Preview").click();
    // Not `h.run()`: a table's preview shows a spinner while its rows load in the background,
    // and on a loaded machine that outlasts the harness's settle limit (64 frames).
    wait_until(h, "the Preview screen", MINUTE, |s| {
        s.state.screen == Screen::Preview
    });
    assert_eq!(h.state().state.screen, Screen::Preview);
}

fn write_texts(root: &Path, class: &str, texts: &[&str]) {
    let dir = root.join(class);
    std::fs::create_dir_all(&dir).unwrap();
    for (i, t) in texts.iter().enumerate() {
        std::fs::write(dir.join(format!("{i:02}.txt")), t).unwrap();
    }
}

#[test]
fn text_preview_predicts_as_you_type() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train");
    let spam = [
        "win free money now",
        "claim your free prize today",
        "cheap pills free offer",
        "you won money click now",
        "free cash prize winner",
        "exclusive offer win a prize",
        "get rich quick free money",
        "winner claim cash now",
    ];
    let ham = [
        "meeting moved to tomorrow morning",
        "lunch with the project team",
        "notes from the weekly meeting",
        "can you review my project report",
        "see you at lunch tomorrow",
        "the team meeting agenda",
        "report draft for the project",
        "tomorrow we review the notes",
    ];
    write_texts(&train, "spam", &spam);
    write_texts(&train, "ham", &ham);
    let mut h = harness(Studio::new(options(
        tmp.path(),
        &[
            ("algorithm", ParamValue::Text("maxent".into())),
            ("validation_split", ParamValue::Float(0.25)),
        ],
    )));
    train_and_preview(&mut h, "text-classifier", &train, None, &[]);
    h.get_by_label("Predictions appear here.");

    // Type: after the pause, the text is predicted in the background.
    let field = h.get_by_role_and_label(Role::MultilineTextInput, "Text to classify");
    field.focus();
    h.run();
    h.get_by_role_and_label(Role::MultilineTextInput, "Text to classify")
        .type_text("claim free money prize");
    wait_until(&mut h, "the typed text's prediction", MINUTE, |s| {
        s.state.text_preview.is_some() && !s.state.predicting && s.view.text_edited.is_none()
    });
    let preview = h.state().state.text_preview.clone().unwrap();
    assert_eq!(preview.text, "claim free money prize");
    let p = preview.result.unwrap();
    assert_eq!(p.label, "spam");
    assert_eq!(p.ranked.len(), 2);
    h.get_by_label("Prediction: spam");
    h.get_by_label("spam");
    h.get_by_label("ham");

    // Typing on replaces it with the prediction of the whole new text.
    h.get_by_role_and_label(Role::MultilineTextInput, "Text to classify")
        .set_text_value_accesskit("meeting notes for the project team tomorrow");
    wait_until(&mut h, "the edited text's prediction", MINUTE, |s| {
        s.state
            .text_preview
            .as_ref()
            .is_some_and(|t| t.text.starts_with("meeting"))
            && !s.state.predicting
    });
    h.get_by_label("Prediction: ham");

    // Clear empties the box and the result.
    h.get_by_label("Clear").click();
    h.run();
    assert!(h.state().state.text_preview.is_none());
    assert!(h.state().view.typed_text.is_empty());
}

/// Sets a form field of the row editor.
fn set_field(h: &mut Harness<'_, Studio>, column: &str, value: &str) {
    h.get_by_role_and_label(Role::TextInput, column)
        .set_text_value_accesskit(value);
    h.run();
}

#[test]
fn tabular_classifier_preview_picks_and_edits_a_row() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, test) = penguins(tmp.path());
    let mut h = harness(Studio::new(options(
        tmp.path(),
        &[
            ("algorithm", ParamValue::Text("boosted_trees".into())),
            ("max_iterations", ParamValue::Int(40)),
        ],
    )));
    train_and_preview(
        &mut h,
        "tabular-classifier",
        &train,
        Some(&test),
        &[("target", ParamValue::Text("species".into()))],
    );
    wait_until(&mut h, "the test rows", MINUTE, |s| {
        s.state.table_rows.is_some()
    });
    let rows = h.state().state.table_rows.clone().unwrap().unwrap();
    assert_eq!(rows.path, test);
    assert_eq!(rows.split, "test");
    assert!(rows.rows.len() >= 10);
    h.get_by_label("species (actual)");

    // Click a row of the grid: its prediction, with class bars.
    h.get_by_label("Row 2").click();
    wait_until(&mut h, "the row's prediction", MINUTE, |s| {
        s.state.row_prediction.is_some() && !s.state.predicting
    });
    let p = h.state().state.row_prediction.clone().unwrap().unwrap();
    let species = rows.columns.iter().position(|c| c == "species").unwrap();
    assert_eq!(p.label, rows.rows[1][species]);
    assert_eq!(p.ranked.len(), 3);
    h.get_by_label(&format!("Prediction: {}", p.label));
    for (_, prob) in &p.ranked {
        let bar = format!("{:.1}%", prob * 100.0);
        assert!(h.query_all_by_label(&bar).next().is_some(), "{bar}");
    }
    // The form holds the picked row's values.
    let island = rows.columns.iter().position(|c| c == "island").unwrap();
    assert_eq!(
        h.get_by_role_and_label(Role::TextInput, "island").value(),
        Some(rows.rows[1][island].clone())
    );

    // Edit the row into a Gentoo's measurements and predict it.
    for (column, value) in [
        ("island", "Biscoe"),
        ("bill_length_mm", "47.5"),
        ("bill_depth_mm", "14.8"),
        ("flipper_length_mm", "218"),
        ("body_mass_g", "5300"),
    ] {
        set_field(&mut h, column, value);
    }
    h.get_by_label("Predict this row").click();
    wait_until(&mut h, "the edited row's prediction", MINUTE, |s| {
        s.state
            .row_prediction
            .as_ref()
            .is_some_and(|p| p.as_ref().is_ok_and(|p| p.label != rows.rows[1][species]))
            && !s.state.predicting
    });
    h.get_by_label("Prediction: Gentoo");
}

#[test]
fn tabular_regressor_preview_shows_the_predicted_value() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, test) = penguins(tmp.path());
    let mut h = harness(Studio::new(options(
        tmp.path(),
        &[("algorithm", ParamValue::Text("linear".into()))],
    )));
    train_and_preview(
        &mut h,
        "tabular-regressor",
        &train,
        Some(&test),
        &[("target", ParamValue::Text("body_mass_g".into()))],
    );
    wait_until(&mut h, "the test rows", MINUTE, |s| {
        s.state.table_rows.is_some()
    });
    h.get_by_label("Row 1").click();
    wait_until(&mut h, "the row's prediction", MINUTE, |s| {
        s.state.row_prediction.is_some() && !s.state.predicting
    });
    let predicted = |h: &Harness<'_, Studio>| {
        h.state()
            .state
            .row_prediction
            .clone()
            .unwrap()
            .unwrap()
            .value
            .unwrap()
    };
    let first = predicted(&h);
    assert!((2000.0..7000.0).contains(&first), "{first}");
    h.get_by_label_contains("Predicted value: ");
    // The target is no input: the form has no field for it.
    assert!(
        h.query_by_role_and_label(Role::TextInput, "body_mass_g")
            .is_none()
    );

    // Longer flippers and bill: a heavier penguin.
    set_field(&mut h, "flipper_length_mm", "230");
    set_field(&mut h, "bill_length_mm", "50");
    h.get_by_label("Predict this row").click();
    wait_until(&mut h, "the edited row's prediction", MINUTE, |s| {
        s.state
            .row_prediction
            .as_ref()
            .is_some_and(|p| p.as_ref().is_ok_and(|p| p.value != Some(first)))
            && !s.state.predicting
    });
    let heavier = predicted(&h);
    assert!(heavier > first + 300.0, "{first} → {heavier}");
    h.get_by_label(&format!("Predicted value: {heavier:.1}"));
}

/// Writes a 16-bit mono WAV of `samples` at `rate` Hz.
fn write_wav(path: &Path, rate: u32, samples: &[f32]) {
    let data_len = (samples.len() * 2) as u32;
    let mut b = Vec::with_capacity(44 + samples.len() * 2);
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data_len).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes()); // PCM
    b.extend_from_slice(&1u16.to_le_bytes()); // mono
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * 2).to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        b.extend_from_slice(&((s.clamp(-1.0, 1.0) * 32000.0) as i16).to_le_bytes());
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, b).unwrap();
}

/// A 1 s clip: a low hum (class 0) or hiss (class 1), varied by `k`; the first half loud,
/// the second quiet.
fn clip(class: usize, k: usize) -> Vec<f32> {
    let rate = 16_000;
    (0..rate)
        .map(|i| {
            let t = i as f32 / rate as f32;
            let amp = if i < rate / 2 { 0.8 } else { 0.2 };
            let v = if class == 0 {
                (2.0 * std::f32::consts::PI * (180.0 + 15.0 * k as f32) * t).sin()
            } else {
                let x = (i as u64 + 7919 * k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
                (x % 2000) as f32 / 1000.0 - 1.0
            };
            amp * v
        })
        .collect()
}

#[test]
fn sound_preview_draws_the_waveform_and_top_classes() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train");
    for (c, name) in ["hum", "hiss"].iter().enumerate() {
        for k in 0..8 {
            write_wav(
                &train.join(name).join(format!("{k}.wav")),
                16_000,
                &clip(c, k),
            );
        }
    }
    let probe = tmp.path().join("probe/clip.wav");
    write_wav(&probe, 16_000, &clip(0, 11));
    let mut h = harness(Studio::new(options(
        tmp.path(),
        &[
            ("epochs", ParamValue::Int(4)),
            ("cnn_width", ParamValue::Int(8)),
            ("batch_size", ParamValue::Int(8)),
            ("window_secs", ParamValue::Float(0.5)),
            ("validation_split", ParamValue::Float(0.25)),
        ],
    )));
    train_and_preview(&mut h, "sound-classifier", &train, None, &[]);
    h.get_by_label_contains("Drop one or more sound files here");
    drop_paths(&mut h, std::slice::from_ref(&probe), None);
    wait_until(&mut h, "the prediction", MINUTE, |s| {
        !s.state.previews.is_empty() && !s.state.predicting
    });
    let item = h.state().state.previews[0].clone();
    let p = item.result.unwrap();
    assert_eq!(p.ranked.len(), 2);
    let w = item.waveform.unwrap().unwrap();
    assert!((w.duration_secs - 1.0).abs() < 0.01, "{}", w.duration_secs);
    // The loud first half and the quiet second half show in the envelope.
    let cols = w.columns(10);
    assert!(cols[2].1 > 0.6 && cols[7].1 < 0.3, "{cols:?}");
    h.get_by_label("Waveform of clip.wav, 1.00 s");
    h.get_by_label(&format!("Prediction: {}", p.label));
    h.get_by_label("hum");
    h.get_by_label("hiss");
}

#[test]
fn detector_preview_draws_boxes_over_the_image_and_lists_them() {
    use lathe_engine::templates::detect::synth::{self as detect_synth, SynthConfig};
    let tmp = tempfile::tempdir().unwrap();
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets");
    let sprites = detect_synth::load_sprites(
        &assets.join("sample/fashion-mnist/train"),
        &["Trouser", "Bag"],
        4,
    )
    .unwrap();
    let photos: Vec<image::RgbImage> = ["chelsea.png", "coffee.png"]
        .iter()
        .map(|n| {
            image::open(assets.join("photos").join(n))
                .unwrap()
                .to_rgb8()
        })
        .collect();
    let train = tmp.path().join("train");
    let cfg = SynthConfig {
        num_images: 8,
        width: 96,
        height: 96,
        min_objects: 1,
        max_objects: 2,
        min_size: 0.3,
        max_size: 0.5,
        seed: 5,
        extension: "png".into(),
    };
    detect_synth::generate(&train, &sprites, &photos, &cfg).unwrap();
    let mut h = harness(Studio::new(options(
        tmp.path(),
        &[
            ("image_size", ParamValue::Int(96)),
            ("head_channels", ParamValue::Int(32)),
            ("epochs", ParamValue::Int(30)),
            ("batch_size", ParamValue::Int(8)),
            ("learning_rate", ParamValue::Float(0.005)),
            ("validation_split", ParamValue::Float(0.0)),
            ("fine_tune_blocks", ParamValue::Int(0)),
            ("augment_crop", ParamValue::Bool(false)),
            ("augment_flip", ParamValue::Bool(false)),
            ("augment_color", ParamValue::Bool(false)),
            ("confidence_threshold", ParamValue::Float(0.05)),
        ],
    )));
    train_and_preview(&mut h, "object-detector", &train, None, &[]);
    let image = std::fs::read_dir(&train)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .min()
        .unwrap();
    drop_paths(&mut h, std::slice::from_ref(&image), None);
    wait_until(&mut h, "the boxes", MINUTE, |s| {
        !s.state.previews.is_empty() && !s.state.predicting
    });
    let item = h.state().state.previews[0].clone();
    let p = item.result.unwrap();
    assert!(!p.boxes.is_empty(), "no boxes");
    let img = item.image.unwrap().unwrap();
    assert_eq!(img.original, [96, 96]);
    let name = image.file_name().unwrap().to_string_lossy().into_owned();
    let n = p.boxes.len();
    // The image with its boxes, and one list row per box.
    let label = format!("{name} with {n} boxes");
    let drawn = h.get_by_label(&label).rect();
    // A 96 px image is drawn scaled up so its boxes can be read.
    assert!(drawn.width() >= 96.0 * 3.9, "{drawn:?}");
    h.get_by_label(&format!("{n} {}", if n == 1 { "box" } else { "boxes" }));
    for b in &p.boxes {
        assert!(b.label == "Trouser" || b.label == "Bag", "{}", b.label);
        assert!(
            h.query_all_by_label(&format!("{:.1}%", b.confidence * 100.0))
                .next()
                .is_some()
        );
    }
}

#[test]
fn multi_label_preview_shows_every_label_and_marks_those_that_apply() {
    use image::{Rgb, RgbImage};
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train");
    std::fs::create_dir_all(&train).unwrap();
    let image = |disc: bool, stripes: bool, i: u32| {
        RgbImage::from_fn(48, 48, |x, y| {
            let n = ((x * 7 + y * 13 + i * 31) % 17) as u8;
            let (cx, cy) = (16 + (i * 5) % 16, 16 + (i * 3) % 16);
            let d = (x as i32 - cx as i32).pow(2) + (y as i32 - cy as i32).pow(2);
            if disc && d < 64 {
                Rgb([230, 30 + n, 30])
            } else if stripes && (x / 3) % 3 == 0 {
                Rgb([30, 210 - n, 40])
            } else {
                Rgb([20 + n, 20, 30])
            }
        })
    };
    let mut csv = String::from("image,labels\n");
    for i in 0..24u32 {
        let (disc, stripes) = ((i % 4) & 1 == 1, (i % 4) & 2 == 2);
        let name = format!("img{i:02}.png");
        image(disc, stripes, i).save(train.join(&name)).unwrap();
        let labels: Vec<&str> = [(disc, "disc"), (stripes, "stripes")]
            .iter()
            .filter(|l| l.0)
            .map(|l| l.1)
            .collect();
        csv += &format!("{name},{}\n", labels.join(";"));
    }
    std::fs::write(train.join("labels.csv"), csv).unwrap();
    let probe = tmp.path().join("probe.png");
    image(true, false, 99).save(&probe).unwrap();
    let mut h = harness(Studio::new(options(
        tmp.path(),
        &[
            ("epochs", ParamValue::Int(40)),
            ("image_size", ParamValue::Int(48)),
            ("validation_split", ParamValue::Float(0.2)),
        ],
    )));
    train_and_preview(&mut h, "multi-label-image-classifier", &train, None, &[]);
    drop_paths(&mut h, std::slice::from_ref(&probe), None);
    wait_until(&mut h, "the prediction", MINUTE, |s| {
        !s.state.previews.is_empty() && !s.state.predicting
    });
    let p = h.state().state.previews[0].result.clone().unwrap();
    // Every label has a row, whether it applies or not.
    assert_eq!(p.ranked.len(), 2);
    h.get_by_label("disc");
    h.get_by_label("stripes");
    let applies = p.labels.clone().unwrap();
    assert_eq!(applies, vec!["disc".to_string()]);
    h.get_by_label("Labels: disc");
    // Exactly the labels that apply are marked.
    let marked = h.query_all_by_label_contains("%  applies").count();
    assert_eq!(marked, applies.len());
}

#[test]
fn a_dropped_table_file_is_the_data_of_a_table_template() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, _) = penguins(tmp.path());
    let mut h = harness(Studio::new(options(tmp.path(), &[])));
    h.run();
    h.get_by_label("Tabular Classifier").click();
    h.run();
    assert_eq!(h.state().state.screen, Screen::Data);
    let zone = h.get_by_label("Training data").rect().center();
    drop_paths(&mut h, std::slice::from_ref(&train), Some(zone));
    // The scan runs on a job (a spinner meanwhile): wait for it rather than a frame count, which
    // a loaded machine outlasts.
    wait_until(&mut h, "the scan of the dropped table", MINUTE, |s| {
        !matches!(s.state.scan, lathe_studio::state::ScanState::Running { .. })
    });
    let project = h.state().state.project.clone().unwrap();
    assert_eq!(project.data.train, train, "{:?}", h.state().state.notice);
}
