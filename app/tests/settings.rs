//! Settings, Basic and Advanced: the Basic section shows what Create ML shows (epochs, the
//! backbone, the validation share, augmentations) and Advanced, collapsed, the rest; fields that
//! do not apply are hidden (MLP fields for a logistic head, fine-tuning fields unless
//! fine-tuning); shares are edited as percentages; the Device menu lists only the devices this
//! build can use.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{harness, new_project, options};
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use lathe_engine::params::ParamValue;
use lathe_studio::{Command, Screen, Studio};

fn settings_of(h: &mut Harness<'_, Studio>, template: &str, params: &[(&str, ParamValue)]) {
    new_project(h, template, params);
    h.state_mut().send(Command::Show(Screen::Settings));
    h.run();
}

fn shown(h: &Harness<'_, Studio>, label: &str) -> bool {
    h.query_all_by_label(label).next().is_some()
}

#[test]
fn basic_first_advanced_collapsed_and_fields_that_do_not_apply_hidden() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = harness(Studio::new(options(tmp.path(), 1)));
    settings_of(
        &mut h,
        "image-classifier",
        &[("head", ParamValue::Text("logistic".into()))],
    );
    // Basic: what Create ML shows.
    for label in [
        "Backbone",
        "Maximum epochs",
        "Validation split",
        "Augment: flip",
        "Augment: noise",
        "Device",
    ] {
        assert!(shown(&h, label), "{label} is not in Basic");
    }
    // Advanced is collapsed.
    for label in ["Batch size", "Precision", "Feature batch size", "Seed"] {
        assert!(!shown(&h, label), "{label} shows before Advanced is opened");
    }
    h.get_by_label("Advanced").click();
    h.run();
    for label in [
        "Batch size",
        "Precision",
        "Feature batch size",
        "Classifier",
        "Fine-tune last blocks",
        "Seed",
    ] {
        assert!(shown(&h, label), "{label} is not in Advanced");
    }
    // A logistic head has no MLP; no fine-tuning, no fine-tuning settings.
    for label in [
        "MLP hidden units",
        "MLP dropout",
        "Fine-tuning epochs",
        "Fine-tuning learning rate",
    ] {
        assert!(!shown(&h, label), "{label} shows though it does not apply");
    }
    h.get_by_label_contains("Not shown, as they do not apply");
    // Choosing what they tune brings them back.
    for (key, value) in [
        ("head", ParamValue::Text("auto".into())),
        ("fine_tune_blocks", ParamValue::Int(2)),
    ] {
        h.state_mut().send(Command::SetParam {
            key: key.into(),
            value,
        });
    }
    h.run();
    for label in ["MLP hidden units", "MLP dropout", "Fine-tuning epochs"] {
        assert!(shown(&h, label), "{label} is hidden though it applies");
    }
}

#[test]
fn tables_show_the_algorithm_and_hide_other_algorithms_fields() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = harness(Studio::new(options(tmp.path(), 1)));
    settings_of(
        &mut h,
        "tabular-classifier",
        &[("algorithm", ParamValue::Text("random_forest".into()))],
    );
    assert!(shown(&h, "Algorithm"));
    assert!(shown(&h, "Validation share"));
    h.get_by_label("Advanced").click();
    h.run();
    assert!(shown(&h, "Trees"));
    for label in ["Boosting rounds", "Hidden units", "L2 of linear model"] {
        assert!(!shown(&h, label), "{label} shows for a random forest");
    }
}

#[test]
fn shares_are_percentages_that_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = harness(Studio::new(options(tmp.path(), 1)));
    settings_of(&mut h, "image-classifier", &[]);
    let field = h.get_by_label("Validation split");
    assert_eq!(field.value().as_deref(), Some("10 %"));
    field.set_value_accesskit(25.0);
    h.run();
    assert_eq!(
        h.state().state.param("validation_split"),
        Some(ParamValue::Float(0.25))
    );
    assert_eq!(
        h.get_by_label("Validation split").value().as_deref(),
        Some("25 %")
    );
    h.get_by_label("Validation split").set_value_accesskit(10.0);
    h.run();
    assert_eq!(
        h.state().state.param("validation_split"),
        Some(ParamValue::Float(0.1))
    );
}

#[test]
fn the_device_menu_lists_only_devices_this_build_can_use() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = harness(Studio::new(options(tmp.path(), 1)));
    settings_of(&mut h, "image-classifier", &[]);
    let devices = h.state().state.devices.clone();
    assert_eq!(devices[0], if devices.len() == 1 { "cpu" } else { "auto" });
    h.get_by_role_and_label(Role::ComboBox, "Device").click();
    h.run();
    for gpu in ["cuda", "metal", "auto"] {
        assert_eq!(
            shown(&h, gpu),
            devices.iter().any(|d| d == gpu),
            "{gpu}: offered {devices:?}"
        );
    }
    // This machine has no GPU and the app is built without CUDA or Metal: only the CPU.
    if std::env::var_os("LATHE_TEST_GPU").is_none() {
        assert_eq!(devices, ["cpu"]);
        h.get_by_label_contains("trains on the CPU");
    }
    // A project made on a GPU machine says what to do instead of failing at Start.
    h.state_mut().send(Command::SetDevice("cuda".into()));
    h.run();
    if !devices.iter().any(|d| d == "cuda") {
        h.get_by_label_contains("This build cannot use \"cuda\"");
    }
}
