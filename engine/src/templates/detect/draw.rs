//! Draws a detector's boxes over an image (`lathe predict --draw OUT.png`): a coloured frame per
//! box and a label tag with the confidence, one colour per label (plotters, embedded font).

use crate::data::image_decode;
use crate::error::{Error, Result};
use crate::task::PredictedBox;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

static FONT: Once = Once::new();

const PALETTE: [RGBColor; 8] = [
    RGBColor(230, 25, 75),
    RGBColor(60, 180, 75),
    RGBColor(0, 130, 200),
    RGBColor(245, 130, 48),
    RGBColor(145, 30, 180),
    RGBColor(70, 240, 240),
    RGBColor(240, 50, 230),
    RGBColor(210, 245, 60),
];

fn colour(label: &str) -> RGBColor {
    let h = label
        .bytes()
        .fold(0usize, |a, b| a.wrapping_mul(31).wrapping_add(b as usize));
    PALETTE[h % PALETTE.len()]
}

fn draw_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::io("drawing boxes", path, std::io::Error::other(e.to_string()))
}

/// Writes `input` with `boxes` (centre-based, in its pixels) drawn on it as a PNG at `out`.
pub fn draw(input: &Path, boxes: &[PredictedBox], out: &Path) -> Result<()> {
    FONT.call_once(|| {
        // Registration only fails on a malformed font, and this one is compiled in.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            epaint_default_fonts::UBUNTU_LIGHT,
        );
    });
    let bytes = std::fs::read(input).map_err(|e| Error::io("reading", input, e))?;
    let mut img = image_decode::decode_rgb(&bytes).map_err(|e| Error::data(e, input))?;
    let (w, h) = img.dimensions();
    let thickness = (w.min(h) / 200).max(1) as i32;
    let font_px = (w.min(h) as f64 / 28.0).clamp(10.0, 32.0);
    {
        let buf: &mut [u8] = &mut img;
        let root = BitMapBackend::with_buffer(buf, (w, h)).into_drawing_area();
        for b in boxes {
            let c = colour(&b.label);
            let x0 = (b.x - b.width / 2.0).round() as i32;
            let y0 = (b.y - b.height / 2.0).round() as i32;
            let x1 = (b.x + b.width / 2.0).round() as i32;
            let y1 = (b.y + b.height / 2.0).round() as i32;
            for t in 0..thickness {
                root.draw(&Rectangle::new(
                    [(x0 - t, y0 - t), (x1 + t, y1 + t)],
                    c.stroke_width(1),
                ))
                .map_err(|e| draw_err(out, e))?;
            }
            let text = format!("{} {:.0}%", b.label, b.confidence * 100.0);
            let style = ("sans-serif", font_px).into_font().color(&WHITE);
            let (tw, th) = root
                .estimate_text_size(&text, &style)
                .map_err(|e| draw_err(out, e))?;
            let ty = if y0 - th as i32 - 4 >= 0 {
                y0 - th as i32 - 4
            } else {
                y0
            };
            root.draw(&Rectangle::new(
                [
                    (x0 - thickness, ty),
                    (x0 + tw as i32 + 6, ty + th as i32 + 4),
                ],
                c.filled(),
            ))
            .map_err(|e| draw_err(out, e))?;
            root.draw(&Text::new(text, (x0 + 3, ty + 2), style))
                .map_err(|e| draw_err(out, e))?;
        }
        root.present().map_err(|e| draw_err(out, e))?;
    }
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| draw_err(out, e))?;
    crate::fsutil::atomic_write(out, &png)
}
