//! A picture as a list of items (text, colour tiles, filled boxes) at pixel
//! positions, and its two renderings: an RGB raster saved as PNG, and SVG (text
//! as text, each tile as a small PNG data URI scaled without smoothing). What to
//! draw is `inspect`'s business; this file knows only how.

use base64::Engine as _;
use image::{ImageFormat, Rgb, RgbImage};
use noto_sans_mono_bitmap::{get_raster, get_raster_width, FontWeight, RasterHeight};
use std::fmt::Write as _;
use std::io::Cursor;

/// The label font: 16 px lines, every character the same width.
const FONT: (FontWeight, RasterHeight) = (FontWeight::Regular, RasterHeight::Size16);

/// The height of a line of text.
pub const LINE: u32 = 16;

/// The width of `chars` characters of text.
pub fn text_width(chars: usize) -> u32 {
    (chars * get_raster_width(FONT.0, FONT.1)) as u32
}

/// An RGB colour.
pub type Color = [u8; 3];

pub const BLACK: Color = [0, 0, 0];
pub const GRAY: Color = [110, 110, 110];
pub const WHITE: Color = [255, 255, 255];

/// One thing drawn, its top left corner at (x, y).
#[derive(Debug, Clone)]
pub enum Item {
    /// One line of ASCII text (other characters show as `?`).
    Text { x: u32, y: u32, text: String, color: Color },
    /// An image of `cells` shown `w` x `h` pixels large (each cell a block).
    Tile {
        x: u32,
        y: u32,
        w: u32,
        h: u32,
        cells: RgbImage,
    },
    /// A filled box.
    Box {
        x: u32,
        y: u32,
        w: u32,
        h: u32,
        color: Color,
    },
}

/// Items on a white canvas.
#[derive(Debug, Clone, Default)]
pub struct Picture {
    pub width: u32,
    pub height: u32,
    pub items: Vec<Item>,
}

impl Picture {
    /// Adds an item, growing the canvas to hold it (plus `margin` on the right
    /// and at the bottom).
    pub fn add(&mut self, item: Item, margin: u32) {
        let (right, bottom) = match &item {
            Item::Text { x, y, text, .. } => (x + text_width(text.chars().count()), y + LINE),
            Item::Tile { x, y, w, h, .. } | Item::Box { x, y, w, h, .. } => (x + w, y + h),
        };
        self.width = self.width.max(right + margin);
        self.height = self.height.max(bottom + margin);
        self.items.push(item);
    }

    /// The picture as an RGB raster.
    pub fn raster(&self) -> RgbImage {
        let mut canvas = RgbImage::from_pixel(self.width.max(1), self.height.max(1), Rgb(WHITE));
        for item in &self.items {
            match item {
                Item::Text { x, y, text, color } => draw_text(&mut canvas, *x, *y, text, *color),
                Item::Tile { x, y, w, h, cells } => draw_tile(&mut canvas, *x, *y, *w, *h, cells),
                Item::Box { x, y, w, h, color } => {
                    for py in *y..(y + h).min(canvas.height()) {
                        for px in *x..(x + w).min(canvas.width()) {
                            canvas.put_pixel(px, py, Rgb(*color));
                        }
                    }
                }
            }
        }
        canvas
    }

    /// The picture as PNG bytes.
    pub fn png(&self) -> Result<Vec<u8>, String> {
        png_bytes(&self.raster())
    }

    /// The picture as an SVG document.
    pub fn svg(&self) -> Result<String, String> {
        let (w, h) = (self.width.max(1), self.height.max(1));
        let mut out = String::new();
        let _ = writeln!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="monospace" font-size="13">"#
        );
        let _ = writeln!(out, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
        for item in &self.items {
            match item {
                Item::Text { x, y, text, color } => {
                    // The raster's baseline sits about 3/4 down its 16 px line.
                    let _ = writeln!(
                        out,
                        r#"<text x="{x}" y="{}" fill="{}">{}</text>"#,
                        y + 12,
                        hex(*color),
                        escape(text)
                    );
                }
                Item::Tile { x, y, w, h, cells } => {
                    let data = base64::engine::general_purpose::STANDARD.encode(png_bytes(cells)?);
                    let _ = writeln!(
                        out,
                        r#"<image x="{x}" y="{y}" width="{w}" height="{h}" preserveAspectRatio="none" style="image-rendering:pixelated" href="data:image/png;base64,{data}"/>"#
                    );
                }
                Item::Box { x, y, w, h, color } => {
                    let _ = writeln!(
                        out,
                        r#"<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="{}"/>"#,
                        hex(*color)
                    );
                }
            }
        }
        out.push_str("</svg>\n");
        Ok(out)
    }
}

fn png_bytes(image: &RgbImage) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
        .map_err(|e| format!("cannot encode PNG: {e}"))?;
    Ok(bytes)
}

fn hex(c: Color) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// `cells` scaled to `w` x `h` by nearest neighbour (sharp blocks, as the maps are).
fn draw_tile(canvas: &mut RgbImage, x: u32, y: u32, w: u32, h: u32, cells: &RgbImage) {
    let (cw, ch) = (cells.width().max(1), cells.height().max(1));
    if cells.width() == 0 || cells.height() == 0 {
        return;
    }
    for py in 0..h {
        for px in 0..w {
            let (cx, cy) = (px * cw / w.max(1), py * ch / h.max(1));
            let (tx, ty) = (x + px, y + py);
            if tx < canvas.width() && ty < canvas.height() {
                canvas.put_pixel(tx, ty, *cells.get_pixel(cx.min(cw - 1), cy.min(ch - 1)));
            }
        }
    }
}

/// One line of text, each glyph's coverage blended over what is there.
fn draw_text(canvas: &mut RgbImage, x: u32, y: u32, text: &str, color: Color) {
    let advance = get_raster_width(FONT.0, FONT.1) as u32;
    for (i, c) in text.chars().enumerate() {
        let glyph = get_raster(c, FONT.0, FONT.1).or_else(|| get_raster('?', FONT.0, FONT.1));
        let Some(glyph) = glyph else { continue };
        let left = x + i as u32 * advance;
        for (row, line) in glyph.rows().enumerate() {
            for (col, &coverage) in line.iter().enumerate() {
                let (px, py) = (left + col as u32, y + row as u32);
                if coverage == 0 || px >= canvas.width() || py >= canvas.height() {
                    continue;
                }
                let a = u32::from(coverage);
                let pixel = canvas.get_pixel_mut(px, py);
                for (dst, src) in pixel.0.iter_mut().zip(color) {
                    *dst = ((u32::from(*dst) * (255 - a) + u32::from(src) * a) / 255) as u8;
                }
            }
        }
    }
}

/// Viridis, sampled at nine points (t = 0, 1/8, ..., 1): dark blue for a map's
/// lowest value, yellow for its highest, readable in gray print and by most
/// colour-blind readers.
const VIRIDIS: [Color; 9] = [
    [68, 1, 84],
    [71, 44, 122],
    [59, 81, 139],
    [44, 113, 142],
    [33, 144, 141],
    [39, 173, 129],
    [92, 200, 99],
    [170, 220, 50],
    [253, 231, 37],
];

/// The colour of `t` in [0, 1] (clamped) on viridis.
pub fn viridis(t: f32) -> Color {
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
    let pos = t * (VIRIDIS.len() - 1) as f32;
    let i = (pos as usize).min(VIRIDIS.len() - 2);
    let f = pos - i as f32;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    [0, 1, 2].map(|k| (f32::from(a[k]) + (f32::from(b[k]) - f32::from(a[k])) * f).round() as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canvas_grows_to_hold_every_item() {
        let mut p = Picture::default();
        p.add(
            Item::Box {
                x: 10,
                y: 20,
                w: 5,
                h: 5,
                color: BLACK,
            },
            4,
        );
        p.add(
            Item::Text {
                x: 0,
                y: 0,
                text: "ab".into(),
                color: BLACK,
            },
            4,
        );
        assert_eq!((p.width, p.height), (19, 29));
        let raster = p.raster();
        assert_eq!(raster.get_pixel(12, 22).0, BLACK);
        assert_eq!(raster.get_pixel(18, 28).0, WHITE);
        // The text left some ink.
        assert!((0..text_width(2)).any(|x| (0..LINE).any(|y| raster.get_pixel(x, y).0 != WHITE)));
    }

    #[test]
    fn tiles_scale_by_nearest_neighbour() {
        let cells = RgbImage::from_fn(2, 1, |x, _| Rgb(if x == 0 { BLACK } else { WHITE }));
        let mut p = Picture::default();
        p.add(
            Item::Tile {
                x: 0,
                y: 0,
                w: 4,
                h: 2,
                cells,
            },
            0,
        );
        let r = p.raster();
        assert_eq!(r.get_pixel(1, 1).0, BLACK);
        assert_eq!(r.get_pixel(2, 0).0, WHITE);
        let svg = p.svg().unwrap();
        assert!(svg.contains("data:image/png;base64,") && svg.ends_with("</svg>\n"));
    }

    #[test]
    fn viridis_runs_from_dark_to_light() {
        assert_eq!(viridis(0.0), VIRIDIS[0]);
        assert_eq!(viridis(1.0), VIRIDIS[8]);
        assert_eq!(viridis(f32::NAN), VIRIDIS[0]);
        let luma = |c: Color| c.iter().map(|&v| u32::from(v)).sum::<u32>();
        assert!(luma(viridis(0.25)) < luma(viridis(0.75)));
    }
}
