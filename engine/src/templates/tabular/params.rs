//! The table templates' parameters: every tunable with its range, default and help
//! (`param_specs`), and the settings checked once into [`TabularParams`] (with the class weights
//! that `class_weight = balanced` sets).

use crate::learners::forest::ForestParams;
use crate::learners::gbt::GbtParams;
use crate::learners::mlp::MlpParams;
use crate::params::{ParamSpec, ParamValue, ResolvedParams};
use crate::templates::tabular::data::TargetKind;

/// Every parameter of the table tasks.
pub fn param_specs(kind: TargetKind) -> Vec<ParamSpec> {
    let linear = match kind {
        TargetKind::Classification => "logistic regression",
        TargetKind::Regression => "ridge regression",
    };
    let mut specs = vec![
        ParamSpec::new(
            "target",
            "Target column",
            "Data",
            "The column to predict (`--target COL`); empty picks a column named target, label, class or y.",
            crate::params::ParamKind::Text,
            ParamValue::Text(String::new()),
        ),
        ParamSpec::new(
            "ignore_columns",
            "Ignore columns",
            "Data",
            "Comma-separated columns the model must not use (ids, leaks).",
            crate::params::ParamKind::Text,
            ParamValue::Text(String::new()),
        ),
        ParamSpec::float(
            "validation_split",
            "Validation share",
            "Data",
            "Share of the training rows held out for early stopping and model choice when no validation table is given.",
            (0.0, 0.5),
            0.1,
        ),
        ParamSpec::choice(
            "algorithm",
            "Algorithm",
            "Model",
            &format!(
                "boosted_trees, {linear} (linear), random_forest, mlp, or auto: train them all and keep the best on validation."
            ),
            &["auto", "boosted_trees", "linear", "random_forest", "mlp"],
            "auto",
        ),
        ParamSpec::int(
            "time_limit",
            "Time limit (s)",
            "Model",
            "auto starts no further candidate after this many seconds; 0 = 60 s plus 1 s per 2,000 training rows. On tables above 50,000 rows the random forest and the MLP are first fitted briefly (32 trees, 20 epochs) on 20,000 rows and skipped when that does not beat the best so far.",
            (0, 1_000_000),
            0,
        ),
        ParamSpec::int(
            "cv_folds",
            "Cross-validation folds",
            "Model",
            "auto on tables of at most 10,000 training + validation rows: each candidate is also fitted this many times, each time without one fold of the rows, and the candidates are compared and the ensemble weighted on these out-of-fold predictions over every row (AutoGluon's bagging) instead of on the validation split alone, whose few hundred rows make the choice largely chance. 0 or 1 = choose on the validation split. Costs that many extra fits per candidate.",
            (0, 20),
            5,
        ),
        ParamSpec::int(
            "max_iterations",
            "Boosting rounds",
            "Boosted trees",
            "Most boosting rounds (trees per output). The default, 100, is scikit-learn's and LightGBM's; as in scikit-learn, early stopping on validation loss applies only to tables above 10,000 training rows.",
            (1, 10_000),
            100,
        ),
        ParamSpec::float(
            "learning_rate",
            "Learning rate",
            "Boosted trees",
            "Shrinkage of every tree's contribution.",
            (1e-4, 1.0),
            0.1,
        ),
        ParamSpec::int(
            "max_leaf_nodes",
            "Leaves per tree",
            "Boosted trees",
            "Most leaves of one tree (trees grow best split first).",
            (2, 1024),
            31,
        ),
        ParamSpec::int(
            "max_depth",
            "Max depth",
            "Boosted trees",
            "Deepest a tree may grow; 0 for no limit besides the leaf count.",
            (0, 64),
            0,
        ),
        ParamSpec::int(
            "min_samples_leaf",
            "Rows per leaf",
            "Boosted trees",
            "Fewest training rows a leaf may hold.",
            (1, 100_000),
            20,
        ),
        ParamSpec::float(
            "l2_regularization",
            "L2 on leaves",
            "Boosted trees",
            "L2 penalty on leaf values.",
            (0.0, 1e6),
            0.0,
        ),
        ParamSpec::int(
            "max_bins",
            "Bins per feature",
            "Boosted trees",
            "Histogram bins per numeric column (missing values get their own).",
            (2, 255),
            255,
        ),
        ParamSpec::int(
            "early_stopping_rounds",
            "Early stopping",
            "Training",
            "Rounds (or iterations) without validation improvement before stopping; 0 never stops early.",
            (0, 1000),
            10,
        ),
        ParamSpec::float(
            "linear_l2",
            "L2 of linear model",
            "Linear",
            &format!("L2 penalty of the {linear} on standardized inputs."),
            (0.0, 100.0),
            1e-4,
        ),
        ParamSpec::int(
            "linear_iterations",
            "Linear iterations",
            "Linear",
            "Most full-batch iterations of logistic regression (ridge regression is solved exactly).",
            (1, 100_000),
            500,
        ),
        ParamSpec::int(
            "forest_trees",
            "Trees",
            "Random forest",
            "Trees in the forest, each grown on a bootstrap sample of the training rows.",
            (1, 5000),
            100,
        ),
        ParamSpec::int(
            "forest_max_leaf_nodes",
            "Leaves per tree",
            "Random forest",
            "Most leaves of one forest tree (forest trees grow deep; each leaf needs at least one row).",
            (2, 65_536),
            2048,
        ),
        ParamSpec::float(
            "forest_max_features",
            "Features per split",
            "Random forest",
            "Share of the columns each split chooses from; 0 picks √p for classes and all for numbers (scikit-learn's defaults).",
            (0.0, 1.0),
            0.0,
        ),
        ParamSpec::int(
            "mlp_hidden",
            "Hidden units",
            "MLP",
            "Units of the first hidden layer (the second has half as many).",
            (2, 4096),
            128,
        ),
        ParamSpec::int(
            "mlp_epochs",
            "MLP epochs",
            "MLP",
            "Most passes over the training rows; early stopping usually ends sooner.",
            (1, 10_000),
            200,
        ),
        ParamSpec::int(
            "mlp_batch_size",
            "MLP batch size",
            "MLP",
            "Rows per optimizer step.",
            (1, 65_536),
            256,
        ),
        ParamSpec::float(
            "mlp_learning_rate",
            "MLP learning rate",
            "MLP",
            "Peak AdamW learning rate (warm-up, then cosine decay).",
            (1e-6, 1.0),
            1e-3,
        ),
    ];
    if kind == TargetKind::Classification {
        specs.push(ParamSpec::choice(
            "class_weight",
            "Class weights",
            "Model",
            "none, or balanced: every class weighs the same in training (rows weighted n / (classes × rows of their class)) in every candidate — boosted trees, forest, linear and MLP. Raises the recall of rare classes, usually at some cost in accuracy; compare balanced accuracy and macro F1 in the report.",
            &["none", "balanced"],
            "none",
        ));
    }
    specs
}

/// The table settings, checked.
#[derive(Clone)]
pub(super) struct TabularParams {
    pub(super) target: String,
    pub(super) ignore: Vec<String>,
    pub(super) validation_split: f64,
    pub(super) algorithm: String,
    pub(super) gbt: GbtParams,
    pub(super) linear_l2: f64,
    pub(super) linear_iterations: usize,
    pub(super) patience: usize,
    pub(super) forest: ForestParams,
    pub(super) mlp: MlpParams,
    /// Seconds after which `auto` starts no further candidate (0: 60 s + 1 s per 2,000 rows).
    pub(super) time_limit: f64,
    /// Folds of the cross-validation that compares `auto`'s candidates on small tables (< 2: off).
    pub(super) cv_folds: usize,
    /// `class_weight = balanced` (classification).
    pub(super) balanced: bool,
    /// Weight of each class's rows in training (empty = all 1); set by [`Self::balance`].
    pub(super) class_weights: Vec<f64>,
}

impl TabularParams {
    /// The time limit for a table of `rows` training rows.
    pub(super) fn time_limit_secs(&self, rows: usize) -> f64 {
        if self.time_limit > 0.0 {
            self.time_limit
        } else {
            60.0 + rows as f64 / 2_000.0
        }
    }

    pub(super) fn from_resolved(p: &ResolvedParams, seed: u64) -> Self {
        let patience = p.usize("early_stopping_rounds");
        Self {
            target: p.text("target").trim().to_string(),
            ignore: p
                .text("ignore_columns")
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            validation_split: p.float("validation_split"),
            algorithm: p.text("algorithm").to_string(),
            gbt: GbtParams {
                learning_rate: p.float("learning_rate"),
                max_iterations: p.usize("max_iterations"),
                max_leaf_nodes: p.usize("max_leaf_nodes"),
                min_samples_leaf: p.usize("min_samples_leaf"),
                l2_regularization: p.float("l2_regularization"),
                max_depth: p.usize("max_depth"),
                max_bins: p.usize("max_bins"),
                patience,
                seed,
                class_weights: Vec::new(),
            },
            linear_l2: p.float("linear_l2"),
            linear_iterations: p.usize("linear_iterations"),
            patience,
            forest: ForestParams {
                num_trees: p.usize("forest_trees"),
                max_leaf_nodes: p.usize("forest_max_leaf_nodes"),
                min_samples_leaf: 1,
                max_depth: 0,
                max_features: p.float("forest_max_features"),
                max_bins: p.usize("max_bins"),
                seed,
                class_weights: Vec::new(),
            },
            mlp: MlpParams {
                hidden: p.usize("mlp_hidden"),
                epochs: p.usize("mlp_epochs"),
                batch_size: p.usize("mlp_batch_size"),
                learning_rate: p.float("mlp_learning_rate"),
                weight_decay: 1e-4,
                patience,
                seed,
                class_weights: Vec::new(),
            },
            time_limit: p.usize("time_limit") as f64,
            cv_folds: p.usize("cv_folds"),
            balanced: p.text("class_weight") == "balanced",
            class_weights: Vec::new(),
        }
    }

    /// With `class_weight = balanced` and `classes` classes: weights n / (k · n_c) from the
    /// training targets `y` (k = classes present; an absent class keeps 1), given to every
    /// learner.
    pub(super) fn balance(&mut self, y: &[f64], classes: usize) {
        if !self.balanced || classes < 2 {
            return;
        }
        let mut counts = vec![0usize; classes];
        for t in y {
            if let Some(c) = counts.get_mut(*t as usize) {
                *c += 1;
            }
        }
        let present = counts.iter().filter(|&&c| c > 0).count().max(1) as f64;
        let n = y.len() as f64;
        let w: Vec<f64> = counts
            .iter()
            .map(|&c| if c > 0 { n / (present * c as f64) } else { 1.0 })
            .collect();
        self.gbt.class_weights = w.clone();
        self.forest.class_weights = w.clone();
        self.mlp.class_weights = w.clone();
        self.class_weights = w;
    }
}
