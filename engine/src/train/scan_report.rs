//! What every task does right after scanning its data, in one place: scan warnings become
//! `Event::Warning`s (training goes on), the first scan error stops the run naming its file, and
//! the split sizes and labels go out as `Event::Data`.

use crate::data::{DatasetSummary, Severity};
use crate::error::{Error, Result};
use crate::train::context::RunContext;
use crate::train::event::Event;
use std::path::{Path, PathBuf};

/// Example counts of the three splits.
#[derive(Clone, Copy, Debug, Default)]
pub struct SplitSizes {
    pub train: usize,
    pub validation: usize,
    pub test: usize,
}

impl RunContext {
    /// Reports `summary`'s warnings, fails with its first error (naming the error's first path,
    /// else `data`), then emits `Event::Data` with `sizes` and `labels`.
    pub fn accept_scan(
        &self,
        summary: &DatasetSummary,
        data: &Path,
        sizes: SplitSizes,
        labels: &[String],
    ) -> Result<()> {
        for issue in &summary.issues {
            if issue.severity == Severity::Warning {
                self.warn(
                    issue.message.clone(),
                    issue.paths.first().map(PathBuf::as_path),
                );
            }
        }
        if let Some(e) = summary.errors().next() {
            return Err(Error::Data {
                message: e.message.clone(),
                path: e
                    .paths
                    .first()
                    .cloned()
                    .unwrap_or_else(|| data.to_path_buf()),
            });
        }
        self.emit(Event::Data {
            num_train: sizes.train,
            num_validation: sizes.validation,
            num_test: sizes.test,
            labels: labels.to_vec(),
        });
        Ok(())
    }
}
