//! What a sound dataset's files are like, read from their headers only (no decoding): sample
//! rates and clip lengths for the data screen and `lathe check`, and the health warnings they
//! call for — telephone-rate recordings (nothing above 4 kHz) and clips far shorter than the
//! analysis window.

use crate::data::summary::HealthIssue;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One file's header facts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AudioInfo {
    pub sample_rate: u32,
    pub channels: u16,
    /// Seconds, when the header says how long the file is.
    pub secs: Option<f64>,
}

/// Reads `path`'s header (WAV through hound, the rest through symphonia's probe).
pub fn info(path: &Path) -> Result<AudioInfo, String> {
    crate::data::contain::guarded("the audio decoder", || info_unguarded(path))
}

fn info_unguarded(path: &Path) -> Result<AudioInfo, String> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    if matches!(ext.as_str(), "wav" | "wave") {
        let r =
            hound::WavReader::open(path).map_err(|e| format!("cannot read WAV header ({e})"))?;
        let spec = r.spec();
        let secs = (spec.sample_rate > 0).then(|| r.duration() as f64 / spec.sample_rate as f64);
        return Ok(AudioInfo {
            sample_rate: spec.sample_rate,
            channels: spec.channels,
            secs,
        });
    }
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open ({e})"))?;
    let mss = symphonia::core::io::MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = symphonia::core::probe::Hint::new();
    if !ext.is_empty() {
        hint.with_extension(&ext);
    }
    let probed = symphonia::default::get_probe()
        .format(&hint, mss, &Default::default(), &Default::default())
        .map_err(|e| format!("not a sound file Lathe can read ({e})"))?;
    let track = probed
        .format
        .default_track()
        .ok_or_else(|| "no audio track".to_string())?;
    let p = &track.codec_params;
    let rate = p.sample_rate.unwrap_or(0);
    Ok(AudioInfo {
        sample_rate: rate,
        channels: p.channels.map_or(0, |c| c.count() as u16),
        secs: p
            .n_frames
            .filter(|_| rate > 0)
            .map(|n| n as f64 / rate as f64),
    })
}

/// Recordings at or below this rate are telephone quality.
const TELEPHONE_RATE: u32 = 11_025;

/// Facts for the summary (`sample rates`, `clip length`) and warnings about `files`, given the
/// analysis window in seconds.
pub fn summarize(
    files: &[PathBuf],
    window_secs: f64,
) -> (BTreeMap<String, String>, Vec<HealthIssue>) {
    let infos: Vec<(PathBuf, AudioInfo)> = files
        .par_iter()
        .filter_map(|p| info(p).ok().map(|i| (p.clone(), i)))
        .collect();
    let mut facts = BTreeMap::new();
    let mut issues = Vec::new();
    if infos.is_empty() {
        return (facts, issues);
    }
    let mut rates: BTreeMap<u32, usize> = BTreeMap::new();
    for (_, i) in &infos {
        *rates.entry(i.sample_rate).or_default() += 1;
    }
    facts.insert(
        "sample rates".into(),
        rates
            .iter()
            .map(|(r, n)| format!("{} kHz × {n}", khz(*r)))
            .collect::<Vec<_>>()
            .join(", "),
    );
    let mut secs: Vec<f64> = infos.iter().filter_map(|(_, i)| i.secs).collect();
    secs.sort_by(f64::total_cmp);
    if let (Some(first), Some(last)) = (secs.first(), secs.last()) {
        let median = secs[secs.len() / 2];
        facts.insert(
            "clip length".into(),
            format!("median {median:.2} s, from {first:.2} s to {last:.2} s"),
        );
        if median < window_secs / 2.0 {
            issues.push(HealthIssue::warning(
                "short_clips",
                format!(
                    "half the clips are shorter than {median:.2} s while the analysis window is {window_secs:.2} s: each short clip is padded with silence to a full window; set window_secs near the clips' length (e.g. {:.1})",
                    (median * 1.2).max(0.1)
                ),
                Vec::new(),
            ));
        }
    }
    let low: Vec<PathBuf> = infos
        .iter()
        .filter(|(_, i)| i.sample_rate > 0 && i.sample_rate <= TELEPHONE_RATE)
        .map(|(p, _)| p.clone())
        .collect();
    if !low.is_empty() {
        let rate = infos
            .iter()
            .find(|(p, _)| *p == low[0])
            .map_or(0, |(_, i)| i.sample_rate);
        issues.push(HealthIssue::warning(
            "low_sample_rate",
            format!(
                "{} of {} files are recorded at {} kHz or less (telephone quality): they hold nothing above {} kHz, so the models learn from half the usual frequency range. That is fine when the clips to classify are recorded the same way; if not, train on recordings like them",
                low.len(),
                infos.len(),
                khz(rate),
                khz(rate / 2)
            ),
            low,
        ));
    }
    (facts, issues)
}

fn khz(rate: u32) -> String {
    let k = rate as f64 / 1000.0;
    if (k - k.round()).abs() < 1e-9 {
        format!("{k:.0}")
    } else {
        format!("{k:.2}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn wav(path: &Path, rate: u32, secs: f32) {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for i in 0..(rate as f32 * secs) as usize {
            w.write_sample(((i % 50) as i16 - 25) * 100).unwrap();
        }
        w.finalize().unwrap();
    }

    #[test]
    fn rates_and_lengths_are_summarized_and_telephone_audio_is_flagged() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        for (i, (rate, secs)) in [(8_000, 0.3), (8_000, 0.4), (16_000, 0.5), (22_050, 2.0)]
            .into_iter()
            .enumerate()
        {
            let p = dir.path().join(format!("{i}.wav"));
            wav(&p, rate, secs);
            files.push(p);
        }
        let info0 = info(&files[0]).unwrap();
        assert_eq!(info0.sample_rate, 8_000);
        assert!((info0.secs.unwrap() - 0.3).abs() < 1e-3);
        let (facts, issues) = summarize(&files, 1.0);
        assert_eq!(
            facts["sample rates"],
            "8 kHz × 2, 16 kHz × 1, 22.05 kHz × 1"
        );
        assert!(facts["clip length"].contains("median 0.50 s"), "{facts:?}");
        let low = issues.iter().find(|i| i.code == "low_sample_rate").unwrap();
        assert_eq!(low.paths.len(), 2);
        assert!(
            low.message.contains("nothing above 4 kHz"),
            "{}",
            low.message
        );
        assert!(issues.iter().all(|i| i.code != "short_clips"));
        // A 2 s window makes the half-second clips short.
        let (_, issues) = summarize(&files, 2.0);
        assert!(issues.iter().any(|i| i.code == "short_clips"));
    }
}
