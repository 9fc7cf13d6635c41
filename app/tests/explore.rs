//! The data explorer (the Explore screen): after a tiny image run with one image of class a filed
//! under b, the explorer computes in the background (its features from the run's feature cache),
//! shows the map with an accessible label naming its point count, lists the mislabelled image
//! among the likely mislabels with the class it looks like, opens it, and "Move to a" moves the
//! file into the a folder; Undo puts it back. Other templates' Explore tab says in a sentence
//! that the explorer covers image classifiers so far.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    MINUTE, class_image, harness, make_dataset, new_project, options, train_in_app, wait_until,
};
use egui_kittest::kittest::Queryable;
use lathe_studio::state::ExploreState;
use lathe_studio::{Screen, Studio};

#[test]
fn the_explorer_maps_the_run_and_fixes_a_likely_mislabel() {
    let tmp = tempfile::tempdir().unwrap();
    let train_dir = tmp.path().join("data/train");
    let test_dir = tmp.path().join("data/test");
    make_dataset(&train_dir, &["a", "b", "c"], 6, 0);
    make_dataset(&test_dir, &["a", "b", "c"], 2, 100);
    // An image of class a filed under b.
    let wrong = test_dir.join("b/odd.png");
    class_image(0, 50, 40).save(&wrong).unwrap();
    let bytes = std::fs::read(&wrong).unwrap();

    let mut h = harness(Studio::new(options(tmp.path(), 3)));
    train_in_app(&mut h, "image-classifier", &train_dir, Some(&test_dir), &[]);

    // Showing the screen explores the run on a job; the window keeps drawing meanwhile.
    h.get_by_label("Explore").click();
    h.run_steps(3);
    assert_eq!(h.state().state.screen, Screen::Explore);
    wait_until(&mut h, "the exploration", 2 * MINUTE, |s| {
        matches!(
            s.state.exploration,
            Some(ExploreState::Ready { .. } | ExploreState::Failed { .. })
        )
    });
    let exploration = match &h.state().state.exploration {
        Some(ExploreState::Ready { exploration, .. }) => exploration.clone(),
        other => panic!("not explored: {other:?}"),
    };
    // Every image of the run (18 training and validation, 7 test), its features from the cache
    // that training filled.
    assert_eq!(exploration.samples.len(), 25);
    assert!(
        exploration
            .features
            .contains("25 of 25 images from the feature cache"),
        "{}",
        exploration.features
    );
    h.get_by_label_contains("Map of 25 samples in 3 classes");
    h.get_by_label("a (8)");
    h.get_by_label("b (9)");

    // The mislabelled image is a likely mislabel, said to look like a.
    let odd = exploration
        .samples
        .iter()
        .position(|s| s.input == wrong)
        .unwrap();
    let flagged = exploration
        .mislabels
        .iter()
        .find(|m| m.sample == odd)
        .unwrap_or_else(|| panic!("{:?}", exploration.mislabels));
    assert_eq!(exploration.labels[flagged.suggested], "a");
    h.get_by_label_contains("Likely mislabels (");
    assert!(
        h.query_all_by_label_contains("labelled b, looks like a (")
            .next()
            .is_some()
    );

    // Its name opens it: the image enlarged, its label and split.
    h.query_all_by_label("odd.png")
        .next()
        .unwrap()
        .click_accesskit();
    h.run_steps(3);
    assert_eq!(h.state().view.explore_selected, Some(odd));
    h.get_by_label("labelled b \u{b7} test split");
    h.get_by_label_contains("The cross-validated model says a (");

    // Move to a: the file goes into the a folder; the screen says the map is out of date.
    h.query_all_by_label("Move odd.png to a")
        .next()
        .unwrap()
        .click_accesskit();
    wait_until(&mut h, "the move", MINUTE, |s| {
        !s.state.label_fixes.is_empty() || s.state.notice.as_ref().is_some_and(|n| n.error)
    });
    let moved = test_dir.join("a/odd.png");
    assert_eq!(h.state().state.label_fixes[0].to, moved);
    assert!(!wrong.exists());
    assert_eq!(std::fs::read(&moved).unwrap(), bytes);
    h.get_by_label_contains("1 file moved since this map was made");
    assert!(h.query_all_by_label("Moved to a").next().is_some());

    // Compute again reads the data as it is now: the image under a, no longer a likely mislabel.
    h.get_by_label("Compute again").click();
    wait_until(&mut h, "the second exploration", 2 * MINUTE, |s| {
        match &s.state.exploration {
            Some(ExploreState::Ready { exploration, .. }) => {
                exploration.samples.iter().any(|x| x.input == moved)
            }
            Some(ExploreState::Failed { .. }) => true,
            _ => false,
        }
    });
    let Some(ExploreState::Ready { exploration, .. }) = &h.state().state.exploration else {
        panic!("not explored again: {:?}", h.state().state.exploration);
    };
    let odd = exploration
        .samples
        .iter()
        .position(|s| s.input == moved)
        .unwrap();
    assert_eq!(exploration.labels[exploration.samples[odd].label], "a");
    assert!(exploration.mislabels.iter().all(|m| m.sample != odd));
    h.get_by_label("a (9)");

    // Undo (still offered for the moved file) puts it back.
    h.query_all_by_label("Undo moving odd.png")
        .next()
        .unwrap()
        .click_accesskit();
    wait_until(&mut h, "the move back", MINUTE, |s| {
        s.state.label_fixes.is_empty() || s.state.notice.as_ref().is_some_and(|n| n.error)
    });
    assert_eq!(std::fs::read(&wrong).unwrap(), bytes);
    assert!(!moved.exists());
    h.get_by_label_contains("Compute again");
}

#[test]
fn other_templates_say_the_explorer_is_for_images_so_far() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = harness(Studio::new(options(tmp.path(), 3)));
    new_project(&mut h, "text-classifier", &[]);
    h.get_by_label("Explore").click();
    h.run_steps(3);
    assert_eq!(h.state().state.screen, Screen::Explore);
    h.get_by_label_contains("The data explorer works on image classifiers so far");
    // Nothing is computed for it.
    assert_eq!(h.state().state.exploration, None);
}
