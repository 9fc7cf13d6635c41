//! Error analysis on the Evaluate screen: after training, the Mistakes view lists a deliberately
//! mislabelled image (most confident mistakes first) with its label and the prediction; "Move to
//! <class>" moves the file into that class folder on disk without overwriting the file of the same
//! name already there, marks the data as changed, and Undo puts it back. For a table, the view
//! shows the misclassified row's values and says that relabelling rows is not supported yet.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    MINUTE, class_image, harness, make_dataset, options, options_with, train_in_app, wait_until,
};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use lathe_engine::params::ParamValue;
use lathe_studio::report::EvalView;
use lathe_studio::state::ScanState;
use lathe_studio::{Screen, Studio};
use std::path::Path;

/// The test split's misclassified samples: (input, label, predicted).
fn test_mistakes(h: &Harness<'_, Studio>) -> Vec<(String, String, String)> {
    let report = h.state().state.report.as_ref().unwrap();
    let (_, test) = report
        .evaluations
        .iter()
        .find(|(split, _)| split == "test")
        .unwrap();
    let EvalView::Classification(r) = test else {
        panic!("not a classification report");
    };
    lathe_studio::mistakes::mistakes(r)
        .into_iter()
        .map(|s| {
            (
                s.input.display().to_string(),
                s.label.clone(),
                s.predicted.clone(),
            )
        })
        .collect()
}

#[test]
fn a_mislabelled_image_is_listed_moved_to_its_class_and_moved_back() {
    let tmp = tempfile::tempdir().unwrap();
    let train_dir = tmp.path().join("data/train");
    let test_dir = tmp.path().join("data/test");
    make_dataset(&train_dir, &["a", "b", "c"], 6, 0);
    make_dataset(&test_dir, &["a", "b", "c"], 2, 100);
    // An image of class a filed under b; class a already has a file of that name.
    let wrong = test_dir.join("b/odd.png");
    class_image(0, 50, 40).save(&wrong).unwrap();
    let namesake = test_dir.join("a/odd.png");
    class_image(0, 51, 40).save(&namesake).unwrap();
    let (wrong_bytes, namesake_bytes) = (
        std::fs::read(&wrong).unwrap(),
        std::fs::read(&namesake).unwrap(),
    );

    let mut h = harness(Studio::new(options(tmp.path(), 3)));
    train_in_app(&mut h, "image-classifier", &train_dir, Some(&test_dir), &[]);
    let mistakes = test_mistakes(&h);
    assert!(
        mistakes.contains(&(wrong.display().to_string(), "b".into(), "a".into())),
        "{mistakes:?}"
    );

    // The Mistakes view lists it, with its label and the prediction.
    h.get_by_label("Evaluate").click();
    h.run();
    assert_eq!(h.state().state.screen, Screen::Evaluate);
    h.get_by_label(&format!(
        "Mistakes ({}), most confident first",
        mistakes.len()
    ));
    h.get_by_label("odd.png");
    assert!(h.query_all_by_label("labelled b").next().is_some());
    assert!(
        h.query_all_by_label_contains("predicted a, ")
            .next()
            .is_some()
    );

    // Move to a: into the a folder under a free name; the file of the same name stays as it was.
    // (Through AccessKit: the test split's mistakes lie below the window's fold.)
    h.get_by_label("Move odd.png to a").click_accesskit();
    wait_until(&mut h, "the move", MINUTE, |s| {
        !s.state.label_fixes.is_empty() || s.state.notice.as_ref().is_some_and(|n| n.error)
    });
    let fix = h.state().state.label_fixes[0].clone();
    assert_eq!(fix.from, wrong);
    assert_eq!(fix.to, test_dir.join("a/odd-1.png"));
    assert!(!wrong.exists());
    assert_eq!(std::fs::read(&fix.to).unwrap(), wrong_bytes);
    assert_eq!(std::fs::read(&namesake).unwrap(), namesake_bytes);
    assert!(h.state().state.needs_retraining());
    h.get_by_label_contains("The data changed: 1 file moved");
    h.get_by_label("Moved to a");
    // The project's data is scanned again with the fixed label.
    wait_until(&mut h, "the scan", MINUTE, |s| {
        matches!(s.state.scan, ScanState::Done(_))
    });

    // Undo puts it back.
    h.get_by_label("Undo moving odd-1.png").click_accesskit();
    wait_until(&mut h, "the move back", MINUTE, |s| {
        s.state.label_fixes.is_empty() || s.state.notice.as_ref().is_some_and(|n| n.error)
    });
    assert!(h.state().state.label_fixes.is_empty());
    assert_eq!(std::fs::read(&wrong).unwrap(), wrong_bytes);
    assert!(!test_dir.join("a/odd-1.png").exists());
    assert_eq!(std::fs::read(&namesake).unwrap(), namesake_bytes);
    assert!(!h.state().state.needs_retraining());
    h.get_by_label("Move odd.png to a");
}

#[test]
fn a_misclassified_table_row_shows_its_values_and_no_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/sample/penguins/penguins.csv"),
    )
    .unwrap();
    let mut lines = csv.lines();
    let header = lines.next().unwrap();
    let (mut train_csv, mut test_csv) = (format!("{header}\n"), format!("{header}\n"));
    for (i, line) in lines.enumerate() {
        let out = if i % 4 == 0 {
            &mut test_csv
        } else {
            &mut train_csv
        };
        out.push_str(line);
        out.push('\n');
    }
    // The first test row (an Adelie, line 2) labelled Gentoo.
    let test_csv = test_csv.replacen("\nAdelie,", "\nGentoo,", 1);
    let (train_file, test_file) = (tmp.path().join("train.csv"), tmp.path().join("test.csv"));
    std::fs::write(&train_file, train_csv).unwrap();
    std::fs::write(&test_file, test_csv).unwrap();
    let mut h = harness(Studio::new(options_with(
        tmp.path(),
        &[
            ("algorithm", ParamValue::Text("boosted_trees".into())),
            ("max_iterations", ParamValue::Int(40)),
        ],
    )));
    train_in_app(
        &mut h,
        "tabular-classifier",
        &train_file,
        Some(&test_file),
        &[("target", ParamValue::Text("species".into()))],
    );
    let mistakes = test_mistakes(&h);
    assert!(
        mistakes.contains(&("test.csv:2".into(), "Gentoo".into(), "Adelie".into())),
        "{mistakes:?}"
    );

    h.get_by_label("Evaluate").click();
    wait_until(&mut h, "the row's values", MINUTE, |s| {
        s.state
            .sample_details
            .get(Path::new("test.csv:2"))
            .is_some_and(|d| d.is_ok())
    });
    h.get_by_label("test.csv:2");
    assert!(
        h.query_all_by_label_contains("island: Torgersen")
            .next()
            .is_some()
    );
    h.get_by_label_contains("Changing a row's label from here is not supported yet");
    assert!(h.query_all_by_label_contains("Move ").next().is_none());
}
