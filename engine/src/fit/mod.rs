//! What every training loop shares and that needs no run: the AdamW optimizer and learning-rate
//! schedules (`optim`), and the checks that turn a diverged loss or an out-of-memory device into
//! one clear message (`diverge`). Used by the learners, the head fitters and the templates.

pub mod diverge;
pub mod optim;
