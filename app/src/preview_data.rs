//! What the Preview screen shows besides the predictions themselves, and the background work
//! that prepares it: the kind of preview a task gets, a sound file's waveform envelope, the
//! first rows of a table to pick from, and the one-row CSV a picked or edited row is predicted
//! through. Everything here runs on job threads, never on the UI thread.

use lathe_engine::data::{audio_decode, table};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Rows of the test (or validation, or training) table offered for picking.
pub const TABLE_ROWS: usize = 12;
/// Longest side of a previewed image as uploaded for drawing boxes on.
pub const PREVIEW_IMAGE_SIZE: u32 = 720;
/// Samples per waveform block (1 ms at 16 kHz: short clips still get a smooth outline).
const WAVEFORM_BLOCK: usize = 16;
/// Most blocks kept (a waveform is at most a few thousand pixel columns wide).
const MAX_BLOCKS: usize = 4096;
/// Longest sound drawn (the prediction still covers the whole file).
pub const WAVEFORM_MAX_SECS: u64 = 10 * 60;

/// How the Preview screen takes input and shows results, by task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreviewKind {
    /// Drop images; top classes with bars.
    Image,
    /// Drop images; every label with its bar, those above the threshold marked.
    MultiLabel,
    /// Type text; top classes, predicted as you type.
    Text,
    /// Drop sound files; waveform and top classes.
    Sound,
    /// Drop images; boxes drawn over the image, and listed.
    Detector,
    /// Pick or edit a table row; class bars or the predicted value.
    Table,
    /// Drop motion recordings; the recording with the activity predicted along it.
    Activity,
}

impl PreviewKind {
    /// The preview of an engine task id (unknown tasks get the image preview's file drop).
    pub fn of_task(task: &str) -> Self {
        match task {
            "multi-label-image-classification" => Self::MultiLabel,
            "text-classification" => Self::Text,
            "sound-classification" => Self::Sound,
            "object-detection" => Self::Detector,
            "activity-classification" => Self::Activity,
            "tabular-classification" | "tabular-regression" => Self::Table,
            _ => Self::Image,
        }
    }

    /// Whether inputs are dropped files.
    pub fn takes_files(self) -> bool {
        !matches!(self, Self::Text | Self::Table)
    }

    /// What files to drop, for the drop zone's text.
    pub fn noun(self) -> &'static str {
        match self {
            Self::Sound => "sound files",
            Self::Activity => "recordings",
            _ => "images",
        }
    }
}

/// A sound's amplitude envelope: the min and max sample of each 1 ms block.
#[derive(Clone, Debug, PartialEq)]
pub struct Waveform {
    pub mins: Vec<f32>,
    pub maxs: Vec<f32>,
    pub duration_secs: f64,
    /// The file was longer than what is drawn.
    pub truncated: bool,
}

impl Waveform {
    /// Decodes `path` (mono, 16 kHz, as the model hears it) into its envelope.
    pub fn read(path: &Path) -> Result<Self, String> {
        let mut mins = Vec::new();
        let mut maxs = Vec::new();
        let (mut lo, mut hi, mut in_block) = (f32::INFINITY, f32::NEG_INFINITY, 0usize);
        let max_samples = WAVEFORM_MAX_SECS * u64::from(audio_decode::SAMPLE_RATE);
        let mut seen = 0u64;
        let mut truncated = false;
        audio_decode::decode(path, &mut |chunk| {
            for &s in chunk {
                if seen >= max_samples {
                    truncated = true;
                    return false;
                }
                seen += 1;
                lo = lo.min(s);
                hi = hi.max(s);
                in_block += 1;
                if in_block == WAVEFORM_BLOCK {
                    mins.push(lo);
                    maxs.push(hi);
                    (lo, hi, in_block) = (f32::INFINITY, f32::NEG_INFINITY, 0);
                }
            }
            true
        })
        .map_err(|e| format!("{e}: {}", path.display()))?;
        if in_block > 0 {
            mins.push(lo);
            maxs.push(hi);
        }
        let mut w = Self {
            mins,
            maxs,
            duration_secs: seen as f64 / f64::from(audio_decode::SAMPLE_RATE),
            truncated,
        };
        // Long sounds are kept at a few thousand blocks: drawing then stays cheap every frame.
        if w.mins.len() > MAX_BLOCKS {
            (w.mins, w.maxs) = w.columns(MAX_BLOCKS).into_iter().unzip();
        }
        Ok(w)
    }

    /// The envelope resampled to `columns` pixel columns: (min, max) of the blocks each covers.
    pub fn columns(&self, columns: usize) -> Vec<(f32, f32)> {
        let n = self.mins.len();
        if n == 0 || columns == 0 {
            return Vec::new();
        }
        (0..columns)
            .map(|c| {
                let start = c * n / columns;
                let end = ((c + 1) * n / columns).max(start + 1).min(n);
                let lo = self.mins[start..end]
                    .iter()
                    .copied()
                    .fold(f32::INFINITY, f32::min);
                let hi = self.maxs[start..end]
                    .iter()
                    .copied()
                    .fold(f32::NEG_INFINITY, f32::max);
                (lo, hi)
            })
            .collect()
    }
}

/// A previewed image, downsized for drawing, with the size the model's boxes refer to.
#[derive(Clone, Debug)]
pub struct PreviewImage {
    pub image: Arc<egui::ColorImage>,
    /// Width and height of the original file, in pixels.
    pub original: [u32; 2],
}

impl PreviewImage {
    pub fn read(path: &Path) -> Result<Self, String> {
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let image = image::load_from_memory(&bytes)
            .map_err(|e| format!("cannot decode {}: {e}", path.display()))?;
        let original = [image.width(), image.height()];
        let small = if image.width().max(image.height()) > PREVIEW_IMAGE_SIZE {
            image.thumbnail(PREVIEW_IMAGE_SIZE, PREVIEW_IMAGE_SIZE)
        } else {
            image
        }
        .to_rgba8();
        let size = [small.width() as usize, small.height() as usize];
        Ok(Self {
            image: Arc::new(egui::ColorImage::from_rgba_unmultiplied(
                size,
                small.as_raw(),
            )),
            original,
        })
    }
}

/// The first rows of a table, as text, to pick one from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TableRows {
    pub path: PathBuf,
    /// Which data it is (`test`, `validation`, `training`).
    pub split: String,
    pub columns: Vec<String>,
    /// Cells of each row (empty when missing).
    pub rows: Vec<Vec<String>>,
    /// The column the model predicts (shown, not edited).
    pub target: Option<String>,
}

impl TableRows {
    /// Reads the first [`TABLE_ROWS`] rows of `path`.
    pub fn read(path: &Path, split: &str, target: Option<String>) -> Result<Self, String> {
        let t = table::read(path).map_err(|e| e.to_string())?;
        let n = t.num_rows().min(TABLE_ROWS);
        let rows = (0..n)
            .map(|r| {
                t.cells
                    .iter()
                    .map(|c| c.get(r).unwrap_or("").to_string())
                    .collect()
            })
            .collect();
        Ok(Self {
            path: path.to_path_buf(),
            split: split.to_string(),
            columns: t.columns.clone(),
            rows,
            target: target.filter(|t| !t.is_empty()),
        })
    }

    /// Whether column `i` is the target (not a model input).
    pub fn is_target(&self, i: usize) -> bool {
        self.target.as_deref() == self.columns.get(i).map(String::as_str)
    }
}

/// Writes one row as a CSV file (header and row, every cell quoted) into `dir`, for the model's
/// table prediction; returns its path.
pub fn write_row_csv(dir: &Path, columns: &[String], values: &[String]) -> Result<PathBuf, String> {
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let line = |cells: &mut dyn Iterator<Item = &String>| {
        cells.map(|c| quote(c)).collect::<Vec<_>>().join(",")
    };
    let text = format!(
        "{}\n{}\n",
        line(&mut columns.iter()),
        line(&mut values.iter())
    );
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join("row.csv");
    lathe_engine::fsutil::atomic_write(&path, text.as_bytes()).map_err(|e| e.to_string())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waveform_columns_keep_the_extremes_of_the_blocks_they_cover() {
        let w = Waveform {
            mins: vec![-0.1, -0.9, -0.2, -0.3],
            maxs: vec![0.1, 0.2, 0.8, 0.3],
            duration_secs: 0.04,
            truncated: false,
        };
        assert_eq!(w.columns(2), vec![(-0.9, 0.2), (-0.3, 0.8)]);
        // More columns than blocks: each column shows the block under it.
        let wide = w.columns(8);
        assert_eq!(wide.len(), 8);
        assert_eq!(wide[0], (-0.1, 0.1));
        assert_eq!(wide[7], (-0.3, 0.3));
        assert!(w.columns(0).is_empty());
    }

    /// A 16-bit mono 16 kHz WAV of `samples`.
    fn wav(path: &Path, samples: &[f32]) {
        let n = (samples.len() * 2) as u32;
        let mut b = Vec::new();
        b.extend_from_slice(b"RIFF");
        b.extend_from_slice(&(36 + n).to_le_bytes());
        b.extend_from_slice(b"WAVEfmt ");
        for v in [16u32, 1 | (1 << 16), 16_000, 32_000, 2 | (16 << 16)] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(b"data");
        b.extend_from_slice(&n.to_le_bytes());
        for s in samples {
            b.extend_from_slice(&((s * 32_000.0) as i16).to_le_bytes());
        }
        std::fs::write(path, b).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn a_long_sound_keeps_a_bounded_envelope_with_its_loud_part() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("long.wav");
        // 10 s: quiet, with a loud burst in the middle second.
        let samples: Vec<f32> = (0..160_000)
            .map(|i| {
                let amp = if (72_000..88_000).contains(&i) {
                    0.9
                } else {
                    0.05
                };
                amp * ((i as f32) * 0.3).sin()
            })
            .collect();
        wav(&path, &samples);
        let w = Waveform::read(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!((w.duration_secs - 10.0).abs() < 1e-6, "{}", w.duration_secs);
        assert_eq!(w.mins.len(), MAX_BLOCKS);
        assert_eq!(w.maxs.len(), MAX_BLOCKS);
        let cols = w.columns(10);
        assert!(cols[4].1 > 0.8 || cols[5].1 > 0.8, "{cols:?}");
        assert!(cols[0].1 < 0.1 && cols[9].1 < 0.1, "{cols:?}");
    }

    #[test]
    fn a_row_csv_round_trips_through_the_table_reader() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let columns = vec!["name".to_string(), "size, cm".to_string()];
        let values = vec!["say \"hi\"".to_string(), "3.5".to_string()];
        let path = write_row_csv(dir.path(), &columns, &values).unwrap_or_else(|e| panic!("{e}"));
        let t = TableRows::read(&path, "test", None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.columns, columns);
        assert_eq!(t.rows, vec![values]);
    }

    #[test]
    fn tasks_get_their_preview() {
        assert_eq!(
            PreviewKind::of_task("text-classification"),
            PreviewKind::Text
        );
        assert_eq!(
            PreviewKind::of_task("tabular-regression"),
            PreviewKind::Table
        );
        assert_eq!(
            PreviewKind::of_task("object-detection"),
            PreviewKind::Detector
        );
        assert_eq!(
            PreviewKind::of_task("image-classification"),
            PreviewKind::Image
        );
    }
}
