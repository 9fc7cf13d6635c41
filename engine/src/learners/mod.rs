//! Table learners on plain matrices: histogram gradient-boosted trees (`gbt`, `gbt_tree`), the
//! random forest on the same trees, linear / logistic models (`glm`) and the MLP.

pub mod forest;
pub mod gbt;
pub mod gbt_tree;
pub mod glm;
pub mod lbfgs;
pub mod logistic;
pub mod mlp;
pub mod mlp_adamw;
pub mod mlp_net;
