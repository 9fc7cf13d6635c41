//! The Export screen's form, as a user fills it: a model name, a folder (typed, or chosen in the
//! built-in folder browser), author, license, description and version, fp16 — then Export ONNX
//! writes `<folder>/<name>.onnx` with the metadata in its `metadata_props` (read back with the
//! engine's ONNX types); each format shows its measured size; exporting again over the file
//! asks first, Cancel keeps it, Replace replaces it; Core ML carries the same metadata.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{MINUTE, browse_to, harness, options_with, penguins, train_in_app, wait_until};
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use lathe_engine::params::ParamValue;
use lathe_studio::file_dialog::size_text;
use lathe_studio::{Command, Screen, Studio};
use std::collections::BTreeMap;
use std::path::Path;

fn type_into(h: &mut Harness<'_, Studio>, field: &str, text: &str) {
    h.get_by_role_and_label(Role::TextInput, field)
        .set_text_value_accesskit(text);
    h.run();
}

fn onnx_props(path: &Path) -> BTreeMap<String, String> {
    lathe_engine::export::onnx::read(path)
        .unwrap()
        .metadata_props
        .into_iter()
        .map(|p| (p.key, p.value))
        .collect()
}

/// Waits until every format's size is measured at this precision.
fn wait_for_sizes(h: &mut Harness<'_, Studio>, fp16: bool) {
    wait_until(h, "the export sizes", MINUTE, move |s| {
        s.state
            .export_sizes
            .as_ref()
            .is_some_and(|x| x.fp16 == fp16 && x.sizes.len() == 3)
    });
}

/// Clicks an export button and waits for the export (its notice) or for the question before
/// replacing a file.
fn export(h: &mut Harness<'_, Studio>, button: &str) {
    h.state_mut().send(Command::DismissNotice);
    h.step();
    h.get_by_label(button).click();
    // Not `h.run()`: the spinner of a running export repaints every frame.
    wait_until(h, "the export", MINUTE, |s| {
        !s.state.exporting && (s.state.notice.is_some() || s.state.export_replace.is_some())
    });
    assert_eq!(
        h.state().state.notice.as_ref().map(|n| n.error),
        h.state().state.export_replace.is_none().then_some(false),
        "{:?}",
        h.state().state.notice
    );
}

#[test]
fn the_export_form_writes_onnx_with_its_metadata_and_asks_before_replacing() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, test) = penguins(tmp.path());
    let mut options = options_with(
        tmp.path(),
        &[("algorithm", ParamValue::Text("linear".into()))],
    );
    options.builtin_dialogs = true;
    let mut h = harness(Studio::new(options));
    train_in_app(
        &mut h,
        "tabular-classifier",
        &train,
        Some(&test),
        &[("target", ParamValue::Text("species".into()))],
    );
    h.get_by_label("Export").click();
    h.run();
    assert_eq!(h.state().state.screen, Screen::Export);
    // The name and folder proposed: the project's name, the run's exports folder.
    let run_dir = h.state().state.run.run_dir.clone().unwrap();
    assert_eq!(h.state().view.export_form.name, "TabularClassifier");
    assert_eq!(
        h.state().view.export_form.folder,
        run_dir.join("exports").display().to_string()
    );

    // Every format with its measured size.
    wait_for_sizes(&mut h, false);
    let sizes = h.state().state.export_sizes.clone().unwrap();
    for format in ["safetensors", "coreml", "onnx"] {
        let bytes = *sizes.sizes[format].as_ref().unwrap();
        assert!(bytes > 0, "{format}");
        assert!(
            h.query_all_by_label(&size_text(bytes)).next().is_some(),
            "{format}'s size {} is not shown",
            size_text(bytes)
        );
    }

    // Name, folder (chosen in the built-in browser), metadata.
    let out = tmp.path().join("exported models");
    std::fs::create_dir_all(&out).unwrap();
    type_into(&mut h, "Model name", "Penguins");
    h.get_by_label("Choose…").click();
    h.run();
    browse_to(&mut h, &out);
    h.get_by_label("Choose this folder").click();
    wait_until(&mut h, "the chosen folder", MINUTE, |s| {
        s.state.file_dialog.is_none()
    });
    assert_eq!(h.state().view.export_form.folder, out.display().to_string());
    type_into(&mut h, "Author", "Ada Lovelace");
    type_into(&mut h, "License", "CC-BY-4.0");
    type_into(
        &mut h,
        "Description",
        "Penguin species from bill and flipper measurements",
    );
    type_into(&mut h, "Version", "2.1");
    let target = out.join("Penguins.onnx");
    h.get_by_label("Penguins.onnx");
    h.get_by_label(&out.display().to_string());

    export(&mut h, "Export ONNX");
    assert!(h.state().state.export_replace.is_none());
    let exported = h.state().state.exports.last().cloned().unwrap();
    assert_eq!(
        (exported.format.as_str(), &exported.path),
        ("onnx", &target)
    );
    let props = onnx_props(&target);
    for (key, want) in [
        ("author", "Ada Lovelace"),
        ("license", "CC-BY-4.0"),
        (
            "description",
            "Penguin species from bill and flipper measurements",
        ),
        ("version", "2.1"),
        ("precision", "fp32"),
    ] {
        assert_eq!(props.get(key).map(String::as_str), Some(want), "{key}");
    }
    h.get_by_label("onnx:");

    // Exporting again over the file asks first; Cancel keeps the file as it was.
    std::fs::write(&target, b"an older model").unwrap();
    export(&mut h, "Export ONNX");
    assert_eq!(
        h.state().state.export_replace.as_ref().map(|(_, p)| p),
        Some(&target)
    );
    h.get_by_label("Replace the existing file?");
    h.get_by_label_contains("\u{201c}Penguins.onnx\u{201d} already exists");
    h.get_by_label("Cancel").click();
    h.run();
    assert!(h.state().state.export_replace.is_none());
    assert_eq!(std::fs::read(&target).unwrap(), b"an older model");
    // Replace replaces it.
    export(&mut h, "Export ONNX");
    h.get_by_label("Replace").click();
    wait_until(&mut h, "the replacing export", MINUTE, |s| {
        !s.state.exporting && s.state.export_replace.is_none() && s.state.notice.is_some()
    });
    assert_eq!(
        h.state().state.notice.as_ref().map(|n| n.error),
        Some(false)
    );
    assert_eq!(onnx_props(&target)["author"], "Ada Lovelace");

    // fp16: measured again, and recorded in the Core ML model with the same metadata.
    h.get_by_label("Half-precision weights (fp16)").click();
    h.run();
    h.get_by_label("fp16 does not apply: a folder keeps the trained f32 weights.");
    wait_for_sizes(&mut h, true);
    export(&mut h, "Export Core ML");
    let mlmodel = out.join("Penguins.mlmodel");
    let meta = lathe_engine::export::coreml::spec::read(&mlmodel)
        .unwrap()
        .description
        .unwrap()
        .metadata
        .unwrap();
    assert_eq!(meta.author, "Ada Lovelace");
    assert_eq!(meta.license, "CC-BY-4.0");
    assert_eq!(meta.version_string, "2.1");
    assert_eq!(
        meta.user_defined.get("precision").map(String::as_str),
        Some("fp16")
    );
    // The safetensors folder: named after the model, with the metadata in its manifest.
    export(&mut h, "Export safetensors");
    let folder = out.join("Penguins");
    assert!(folder.join("config.json").is_file());
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["metadata"]["author"], "Ada Lovelace");
    assert_eq!(h.state().state.exports.len(), 3);
    assert_eq!(
        h.state().state.notice.as_ref().map(|n| n.error),
        Some(false)
    );
}

#[test]
fn a_bad_model_name_is_said_and_exports_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, test) = penguins(tmp.path());
    let mut h = harness(Studio::new(options_with(
        tmp.path(),
        &[("algorithm", ParamValue::Text("linear".into()))],
    )));
    train_in_app(
        &mut h,
        "tabular-regressor",
        &train,
        Some(&test),
        &[("target", ParamValue::Text("body_mass_g".into()))],
    );
    h.get_by_label("Export").click();
    h.run();
    type_into(&mut h, "Model name", "../outside");
    h.get_by_label_contains("A model name cannot start with a dot or contain /");
    h.get_by_label("Export ONNX").click();
    h.run();
    assert!(!h.state().state.exporting);
    assert!(h.state().state.exports.is_empty());
}
