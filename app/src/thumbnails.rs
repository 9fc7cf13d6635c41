//! Image thumbnails for the data, evaluation and preview screens: decoded and downsized on one
//! background thread, uploaded as textures between frames, cached (bounded) by path. A second
//! cache of larger images ([`LARGE_SIZE`]) shows a sample enlarged.

use crate::jobs::Repaint;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, channel};

/// Longest side of a thumbnail, in pixels.
pub const THUMB_SIZE: u32 = 160;
/// Longest side of an enlarged image, in pixels.
pub const LARGE_SIZE: u32 = 512;
/// Thumbnails kept; the cache is cleared when it grows past this.
const CAPACITY: usize = 600;
/// Enlarged images kept (each up to 1 MiB of texture).
const LARGE_CAPACITY: usize = 24;

enum Slot {
    Loading,
    Ready(egui::TextureHandle),
    Failed,
}

/// The thumbnail cache.
pub struct Thumbnails {
    slots: HashMap<PathBuf, Slot>,
    requests: Option<Sender<PathBuf>>,
    results: Receiver<(PathBuf, Option<egui::ColorImage>)>,
    capacity: usize,
}

impl Thumbnails {
    pub fn new(repaint: Repaint) -> Self {
        Self::with_size(repaint, THUMB_SIZE)
    }

    /// A cache of images whose longest side is at most `size` pixels.
    pub fn with_size(repaint: Repaint, size: u32) -> Self {
        let (req_tx, req_rx) = channel::<PathBuf>();
        let (res_tx, res_rx) = channel();
        let started = std::thread::Builder::new()
            .name("lathe-thumbnails".into())
            .spawn(move || {
                for path in req_rx {
                    let image = decode(&path, size);
                    if res_tx.send((path, image)).is_err() {
                        break;
                    }
                    repaint.wake();
                }
            });
        Self {
            slots: HashMap::new(),
            requests: started.ok().map(|_| req_tx),
            results: res_rx,
            capacity: if size > THUMB_SIZE {
                LARGE_CAPACITY
            } else {
                CAPACITY
            },
        }
    }

    /// Uploads finished thumbnails (call once a frame, before drawing).
    pub fn receive(&mut self, ctx: &egui::Context) {
        while let Ok((path, image)) = self.results.try_recv() {
            let slot = match image {
                Some(img) => Slot::Ready(ctx.load_texture(
                    path.to_string_lossy(),
                    img,
                    egui::TextureOptions::LINEAR,
                )),
                None => Slot::Failed,
            };
            self.slots.insert(path, slot);
        }
    }

    /// The thumbnail of `path` if ready; asks for it otherwise.
    pub fn get(&mut self, path: &Path) -> Option<egui::TextureHandle> {
        match self.slots.get(path) {
            Some(Slot::Ready(t)) => return Some(t.clone()),
            Some(Slot::Loading | Slot::Failed) => return None,
            None => {}
        }
        if self.slots.len() >= self.capacity {
            self.slots.retain(|_, s| matches!(s, Slot::Loading));
        }
        if let Some(tx) = &self.requests
            && tx.send(path.to_path_buf()).is_ok()
        {
            self.slots.insert(path.to_path_buf(), Slot::Loading);
        }
        None
    }

    /// Draws the thumbnail of `path` in a `size` square (a placeholder while it loads).
    pub fn show(&mut self, ui: &mut egui::Ui, path: &Path, size: f32) -> egui::Response {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match self.get(path) {
            Some(texture) => ui
                .add(egui::Image::new(&texture).fit_to_exact_size(egui::vec2(size, size)))
                .on_hover_text(path.display().to_string()),
            None => {
                let (rect, response) =
                    ui.allocate_exact_size(egui::vec2(size, size), egui::Sense::hover());
                ui.painter()
                    .rect_filled(rect, 4.0, ui.visuals().faint_bg_color);
                response.on_hover_text(name)
            }
        }
    }
}

fn decode(path: &Path, size: u32) -> Option<egui::ColorImage> {
    let bytes = std::fs::read(path).ok()?;
    let image = image::load_from_memory(&bytes).ok()?;
    let small = image.thumbnail(size, size).to_rgba8();
    let size = [small.width() as usize, small.height() as usize];
    Some(egui::ColorImage::from_rgba_unmultiplied(
        size,
        small.as_raw(),
    ))
}
