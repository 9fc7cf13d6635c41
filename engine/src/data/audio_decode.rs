//! Decoding sound files into a stream of mono 16 kHz samples: WAV through `hound`, FLAC, MP3,
//! Ogg/Vorbis, AAC/M4A (and WAV codecs hound lacks) through `symphonia`; any channel count is
//! averaged to mono and any sample rate is resampled with `rubato`'s FFT resampler. Files are
//! decoded chunk by chunk and handed to a sink, so an hour-long recording never sits in memory.

use rubato::{FftFixedIn, Resampler};
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

/// The sample rate everything is resampled to.
pub const SAMPLE_RATE: u32 = 16_000;

/// Lower-case extensions the sound classifier reads.
pub const AUDIO_EXTENSIONS: &[&str] = &[
    "wav", "wave", "flac", "mp3", "ogg", "oga", "m4a", "aac", "mp4",
];

/// Frames decoded per chunk before downmixing and resampling.
const CHUNK_FRAMES: usize = 4096;

/// Checks that `bytes` look like a sound file Lathe can open (the header only; corrupt payloads
/// are found while decoding).
pub fn probe(path: &Path, bytes: &[u8]) -> Result<(), String> {
    crate::data::contain::guarded("the audio decoder", || probe_unguarded(path, bytes))
}

fn probe_unguarded(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if bytes.is_empty() {
        return Err("empty file".into());
    }
    let ext = extension(path);
    if matches!(ext.as_str(), "wav" | "wave") {
        if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
            return Err("not a WAV file (no RIFF/WAVE header)".into());
        }
        // The format chunk must be readable too (a file cut inside its header is caught here,
        // at scan time, rather than while training).
        return match hound::WavReader::new(std::io::Cursor::new(bytes)) {
            Ok(_) | Err(hound::Error::Unsupported) => Ok(()),
            Err(e) => Err(format!("cannot read WAV header ({e})")),
        };
    }
    if crate::data::mp4_check::is_mp4(bytes) {
        crate::data::mp4_check::check(bytes)?;
    }
    let cursor = std::io::Cursor::new(bytes.to_vec());
    let mss = symphonia::core::io::MediaSourceStream::new(Box::new(cursor), Default::default());
    open_symphonia(mss, &ext).map(|_| ())
}

fn extension(path: &Path) -> String {
    path.extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default()
}

/// Decodes `path` and calls `sink` with consecutive chunks of mono 16 kHz samples in [-1, 1].
/// `sink` returns `false` to stop early (the rest of the file is not read). Returns the number of
/// 16 kHz samples delivered. Errors are one-line reasons (the caller names the file).
pub fn decode(path: &Path, sink: &mut dyn FnMut(&[f32]) -> bool) -> Result<u64, String> {
    crate::data::contain::guarded("the audio decoder", || decode_unguarded(path, sink))
}

fn decode_unguarded(path: &Path, sink: &mut dyn FnMut(&[f32]) -> bool) -> Result<u64, String> {
    let ext = extension(path);
    if matches!(ext.as_str(), "wav" | "wave") {
        match hound::WavReader::open(path) {
            Ok(reader) => return decode_wav(reader, sink),
            // WAV codecs hound does not read (µ-law, A-law, ADPCM, …): symphonia's turn.
            Err(hound::Error::Unsupported) => {}
            Err(e) => return Err(format!("cannot decode WAV ({e})")),
        }
    }
    let mut file = File::open(path).map_err(|e| format!("cannot read sound file ({e})"))?;
    let mut head = [0u8; 8];
    let looks_mp4 = std::io::Read::read_exact(&mut file, &mut head).is_ok()
        && crate::data::mp4_check::is_mp4(&head);
    if looks_mp4 {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read sound file ({e})"))?;
        crate::data::mp4_check::check(&bytes)?;
    }
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(0))
        .map_err(|e| format!("cannot read sound file ({e})"))?;
    let mss = symphonia::core::io::MediaSourceStream::new(Box::new(file), Default::default());
    decode_symphonia(mss, &ext, sink)
}

/// Decodes a whole file into memory, keeping at most `max_samples` 16 kHz samples; the second
/// value says whether the file was longer.
pub fn decode_to_vec(path: &Path, max_samples: usize) -> Result<(Vec<f32>, bool), String> {
    let mut out = Vec::new();
    let mut truncated = false;
    decode(path, &mut |chunk| {
        let room = max_samples.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if chunk.len() > room {
            truncated = true;
            return false;
        }
        true
    })?;
    Ok((out, truncated))
}

fn decode_wav(
    mut reader: hound::WavReader<BufReader<File>>,
    sink: &mut dyn FnMut(&[f32]) -> bool,
) -> Result<u64, String> {
    let spec = reader.spec();
    let channels = spec.channels as usize;
    if channels == 0 || spec.sample_rate == 0 {
        return Err("WAV header has no channels or no sample rate".into());
    }
    if reader.len() == 0 {
        return Err("no audio samples (empty WAV)".into());
    }
    let mut out = ToMono16k::new(spec.sample_rate, channels, sink)?;
    let truncated = |e: hound::Error| match e {
        hound::Error::IoError(_) => {
            "the file is truncated (fewer samples than its header says)".to_string()
        }
        e => format!("corrupt WAV data ({e})"),
    };
    let cap = CHUNK_FRAMES * channels;
    match spec.sample_format {
        hound::SampleFormat::Float => {
            let samples = reader.samples::<f32>().map(|s| s.map_err(truncated));
            pump(samples, cap, &mut out)?;
        }
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
            let samples = reader
                .samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale).map_err(truncated));
            pump(samples, cap, &mut out)?;
        }
    }
    Ok(out.finish())
}

/// Moves samples from `samples` to `out` in chunks of `cap` until the end or a stop.
fn pump(
    samples: impl Iterator<Item = Result<f32, String>>,
    cap: usize,
    out: &mut ToMono16k,
) -> Result<(), String> {
    let mut buf: Vec<f32> = Vec::with_capacity(cap);
    for s in samples {
        buf.push(s?);
        if buf.len() >= cap {
            if !out.push_interleaved(&buf) {
                return Ok(());
            }
            buf.clear();
        }
    }
    out.push_interleaved(&buf);
    Ok(())
}

type Opened = (
    Box<dyn symphonia::core::formats::FormatReader>,
    Box<dyn symphonia::core::codecs::Decoder>,
    u32,
);

fn open_symphonia(
    mss: symphonia::core::io::MediaSourceStream,
    ext: &str,
) -> Result<Opened, String> {
    use symphonia::core::codecs::{CODEC_TYPE_NULL, DecoderOptions};
    let mut hint = symphonia::core::probe::Hint::new();
    if !ext.is_empty() {
        hint.with_extension(ext);
    }
    let probed = symphonia::default::get_probe()
        .format(&hint, mss, &Default::default(), &Default::default())
        .map_err(|e| format!("not a sound file Lathe can read ({e})"))?;
    let format = probed.format;
    let Some(track) = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
    else {
        return Err("no audio track".into());
    };
    let decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(|e| format!("unsupported audio codec ({e})"))?;
    let id = track.id;
    Ok((format, decoder, id))
}

fn decode_symphonia(
    mss: symphonia::core::io::MediaSourceStream,
    ext: &str,
    sink: &mut dyn FnMut(&[f32]) -> bool,
) -> Result<u64, String> {
    use symphonia::core::audio::SampleBuffer;
    use symphonia::core::errors::Error as E;
    let (mut format, mut decoder, track_id) = open_symphonia(mss, ext)?;
    let mut out: Option<ToMono16k> = None;
    let mut sink = Some(sink);
    let mut bad_packets = 0usize;
    let mut good_packets = 0usize;
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(E::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(E::ResetRequired) => break,
            Err(e) => return Err(format!("corrupt sound data ({e})")),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(d) => d,
            Err(E::DecodeError(_)) | Err(E::IoError(_)) => {
                bad_packets += 1;
                continue;
            }
            Err(e) => return Err(format!("corrupt sound data ({e})")),
        };
        let spec = *decoded.spec();
        let frames = decoded.frames();
        if frames == 0 {
            continue;
        }
        good_packets += 1;
        let mut buf = SampleBuffer::<f32>::new(decoded.capacity() as u64, spec);
        buf.copy_interleaved_ref(decoded);
        if out.is_none() {
            let Some(s) = sink.take() else { break };
            out = Some(ToMono16k::new(spec.rate, spec.channels.count(), s)?);
        }
        if let Some(o) = out.as_mut()
            && !o.push_interleaved(buf.samples())
        {
            break;
        }
    }
    match out {
        Some(o) if good_packets > 0 => Ok(o.finish()),
        _ if bad_packets > 0 => Err(format!(
            "corrupt sound data ({bad_packets} undecodable packets, none decoded)"
        )),
        _ => Err("no audio samples (empty file)".into()),
    }
}

/// Downmixes interleaved frames to mono and resamples them to 16 kHz, passing output to a sink.
struct ToMono16k<'a> {
    channels: usize,
    resampler: Option<FftFixedIn<f32>>,
    /// Mono input waiting for a full resampler chunk.
    pending: Vec<f32>,
    /// Output samples still to drop (the resampler's delay).
    delay_left: usize,
    input_total: u64,
    output_total: u64,
    ratio: f64,
    sink: &'a mut dyn FnMut(&[f32]) -> bool,
    stopped: bool,
}

impl<'a> ToMono16k<'a> {
    fn new(
        rate: u32,
        channels: usize,
        sink: &'a mut dyn FnMut(&[f32]) -> bool,
    ) -> Result<Self, String> {
        if channels == 0 || rate == 0 {
            return Err("the stream has no channels or no sample rate".into());
        }
        let resampler = if rate == SAMPLE_RATE {
            None
        } else {
            Some(
                FftFixedIn::<f32>::new(rate as usize, SAMPLE_RATE as usize, 1024, 2, 1)
                    .map_err(|e| format!("cannot resample from {rate} Hz ({e})"))?,
            )
        };
        let delay_left = resampler.as_ref().map_or(0, |r| r.output_delay());
        Ok(Self {
            channels,
            resampler,
            pending: Vec::new(),
            delay_left,
            input_total: 0,
            output_total: 0,
            ratio: SAMPLE_RATE as f64 / rate as f64,
            sink,
            stopped: false,
        })
    }

    /// Feeds interleaved frames; `false` once the sink asked to stop.
    fn push_interleaved(&mut self, samples: &[f32]) -> bool {
        if self.stopped {
            return false;
        }
        let inv = 1.0 / self.channels as f32;
        let mono = samples
            .chunks_exact(self.channels)
            .map(|f| f.iter().sum::<f32>() * inv);
        if self.resampler.is_none() {
            let chunk: Vec<f32> = mono.collect();
            return self.emit(&chunk);
        }
        self.pending.extend(mono);
        self.run_resampler(false)
    }

    fn run_resampler(&mut self, last: bool) -> bool {
        let Some(r) = self.resampler.as_mut() else {
            return true;
        };
        let mut produced: Vec<Vec<f32>> = Vec::new();
        let mut used = 0;
        while self.pending.len() - used >= r.input_frames_next() {
            let n = r.input_frames_next();
            let input = [&self.pending[used..used + n]];
            match r.process(&input, None) {
                Ok(o) => produced.extend(o),
                Err(_) => return false,
            }
            used += n;
            self.input_total += n as u64;
        }
        if last {
            let rest = [&self.pending[used..]];
            self.input_total += rest[0].len() as u64;
            used = self.pending.len();
            if let Ok(o) = r.process_partial(Some(&rest), None) {
                produced.extend(o);
            }
            // Flush the resampler's delay line.
            let mut flushes = 0;
            while flushes < 4 {
                flushes += 1;
                match r.process_partial(None::<&[&[f32]]>, None) {
                    Ok(o) => produced.extend(o),
                    Err(_) => break,
                }
            }
        }
        self.pending.drain(..used);
        for chunk in produced {
            let skip = self.delay_left.min(chunk.len());
            self.delay_left -= skip;
            let mut chunk = &chunk[skip..];
            if last {
                // Keep exactly the length the input implies.
                let expected = (self.input_total as f64 * self.ratio).round() as u64;
                let room = expected.saturating_sub(self.output_total) as usize;
                chunk = &chunk[..chunk.len().min(room)];
            }
            if !chunk.is_empty() && !self.emit(chunk) {
                return false;
            }
        }
        true
    }

    fn emit(&mut self, chunk: &[f32]) -> bool {
        self.output_total += chunk.len() as u64;
        if !(self.sink)(chunk) {
            self.stopped = true;
        }
        !self.stopped
    }

    /// Flushes what is left; returns the number of samples delivered.
    fn finish(mut self) -> u64 {
        if !self.stopped {
            self.run_resampler(true);
        }
        self.output_total
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn write_wav(path: &Path, rate: u32, channels: u16, secs: f32, freq: f32) {
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        let n = (rate as f32 * secs) as usize;
        for i in 0..n {
            let v = (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin() * 0.5;
            for _ in 0..channels {
                w.write_sample((v * 32767.0) as i16).unwrap();
            }
        }
        w.finalize().unwrap();
    }

    /// Frequency estimated from zero crossings.
    fn frequency(x: &[f32], rate: f32) -> f32 {
        let crossings = x.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
        crossings as f32 * rate / x.len() as f32
    }

    #[test]
    fn stereo_44k_becomes_mono_16k_with_the_same_pitch() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.wav");
        write_wav(&p, 44_100, 2, 1.5, 440.0);
        let (x, truncated) = decode_to_vec(&p, usize::MAX).unwrap();
        assert!(!truncated);
        assert_eq!(x.len(), 24_000);
        let f = frequency(&x[1000..23_000], 16_000.0);
        assert!((f - 440.0).abs() < 3.0, "{f}");
        let peak = x[1000..23_000].iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!((peak - 0.5).abs() < 0.02, "{peak}");
    }

    #[test]
    fn long_files_stream_in_chunks_and_can_stop_early() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("long.wav");
        write_wav(&p, 8_000, 1, 20.0, 200.0);
        let mut chunks = 0;
        let mut largest = 0;
        let n = decode(&p, &mut |c| {
            chunks += 1;
            largest = largest.max(c.len());
            true
        })
        .unwrap();
        assert_eq!(n, 320_000);
        assert!(chunks > 20 && largest < 20_000, "{chunks} {largest}");
        let (x, truncated) = decode_to_vec(&p, 16_000).unwrap();
        assert!(truncated);
        assert_eq!(x.len(), 16_000);
    }

    #[test]
    fn empty_truncated_and_garbage_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.wav");
        write_wav(&empty, 16_000, 1, 0.0, 440.0);
        let e = decode_to_vec(&empty, usize::MAX).unwrap_err();
        assert!(e.contains("no audio samples"), "{e}");

        let full = dir.path().join("full.wav");
        write_wav(&full, 16_000, 1, 1.0, 440.0);
        let bytes = std::fs::read(&full).unwrap();
        let cut = dir.path().join("cut.wav");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let e = decode_to_vec(&cut, usize::MAX).unwrap_err();
        assert!(e.contains("truncated"), "{e}");

        let junk = dir.path().join("junk.mp3");
        std::fs::write(&junk, b"this is not an mp3 at all, just text").unwrap();
        assert!(decode_to_vec(&junk, usize::MAX).is_err());
        assert!(probe(&junk, b"this is not an mp3").is_err());
        assert!(probe(&cut, &bytes).is_ok());
        assert!(probe(&cut, b"RIFX").is_err());
    }
}
