//! The PNG charts runs leave behind: the training curves (`training.png` in a run folder:
//! training and validation loss per epoch in the upper panel, the learning rate in the lower
//! one) and scatter plots (FlexCode's `cf_share.png`).
//!
//! Drawn into an RGB buffer and encoded with the `png` crate; labels use the public-domain
//! 8x8 glyphs of `font8x8`, so no system font or graphics library is needed on any platform.

use std::path::Path;

use font8x8::{UnicodeFonts, BASIC_FONTS};


type Rgb = [u8; 3];

const BLACK: Rgb = [30, 30, 30];
const GRID: Rgb = [225, 225, 225];
const BLUE: Rgb = [31, 119, 180];
const ORANGE: Rgb = [230, 110, 14];
const GREEN: Rgb = [44, 150, 44];

/// An RGB image being drawn.
struct Canvas {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Canvas {
    fn new(w: usize, h: usize) -> Self {
        Canvas { w, h, px: vec![255; w * h * 3] }
    }

    fn dot(&mut self, x: i64, y: i64, c: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            let i = (y as usize * self.w + x as usize) * 3;
            self.px[i..i + 3].copy_from_slice(&c);
        }
    }

    /// A line `width` pixels thick (Bresenham, thickened with a square brush).
    fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: Rgb, width: i64) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            for ox in 0..width {
                for oy in 0..width {
                    self.dot(x + ox - width / 2, y + oy - width / 2, c);
                }
            }
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    /// Text with its top-left corner at (x, y), glyphs scaled by `s`.
    fn text(&mut self, x: i64, y: i64, text: &str, c: Rgb, s: i64) {
        for (k, ch) in text.chars().enumerate() {
            let glyph = BASIC_FONTS.get(ch).unwrap_or([0; 8]);
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if bits >> col & 1 == 1 {
                        for oy in 0..s {
                            for ox in 0..s {
                                self.dot(x + (k as i64 * 8 + col) * s + ox, y + row as i64 * s + oy, c);
                            }
                        }
                    }
                }
            }
        }
    }

    fn text_width(text: &str, s: i64) -> i64 {
        text.chars().count() as i64 * 8 * s
    }

    fn save(&self, path: &Path) -> std::io::Result<()> {
        let mut bytes = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut bytes, self.w as u32, self.h as u32);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut writer = enc.write_header().map_err(std::io::Error::other)?;
            writer.write_image_data(&self.px).map_err(std::io::Error::other)?;
        }
        crate::artifact::write_bytes(path, &bytes).map_err(|e| e.source)
    }
}

/// Round tick values covering [lo, hi].
fn ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    let span = (hi - lo).max(1e-12);
    let raw = span / target as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|s| span / s <= target as f64).unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() * step;
    (0..).map(|i| first + i as f64 * step).take_while(|v| *v <= hi + step * 1e-9).collect()
}

fn label(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() < 1e-2 || v.abs() >= 1e4 {
        format!("{v:.1e}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// One panel: series of (x, y) points with a shared axis.
struct Panel<'a> {
    top: i64,
    height: i64,
    title: &'a str,
    series: Vec<(&'a str, Rgb, Vec<(f64, f64)>)>,
}

/// A plot area `(left, right, top, bottom)` in pixels over the data ranges `x` and `y`.
#[derive(Debug, Clone, Copy)]
struct Frame {
    area: (i64, i64, i64, i64),
    x: (f64, f64),
    y: (f64, f64),
}

impl Frame {
    fn px(&self, x: f64) -> i64 {
        let (left, right, _, _) = self.area;
        left + ((x - self.x.0) / (self.x.1 - self.x.0).max(1e-12) * (right - left) as f64).round() as i64
    }

    fn py(&self, y: f64) -> i64 {
        let (_, _, top, bottom) = self.area;
        bottom - ((y - self.y.0) / (self.y.1 - self.y.0).max(1e-12) * (bottom - top) as f64).round() as i64
    }

    /// Grid lines with tick labels and the two axes; `whole_x` keeps only whole-number x ticks.
    fn draw_axes(&self, c: &mut Canvas, whole_x: bool) {
        let (left, right, top, bottom) = self.area;
        for t in ticks(self.y.0, self.y.1, 5) {
            let y = self.py(t);
            c.line((left, y), (right, y), GRID, 1);
            let l = label(t);
            c.text(left - 6 - Canvas::text_width(&l, 1), y - 4, &l, BLACK, 1);
        }
        for t in ticks(self.x.0, self.x.1, 10).into_iter().filter(|t| !whole_x || t.fract() == 0.0) {
            let x = self.px(t);
            c.line((x, top), (x, bottom), GRID, 1);
            let l = label(t);
            c.text(x - Canvas::text_width(&l, 1) / 2, bottom + 6, &l, BLACK, 1);
        }
        c.line((left, top), (left, bottom), BLACK, 1);
        c.line((left, bottom), (right, bottom), BLACK, 1);
    }
}

fn draw_panel(c: &mut Canvas, p: &Panel, x_range: (f64, f64)) {
    let (left, right) = (80i64, c.w as i64 - 20);
    let (top, bottom) = (p.top + 24, p.top + p.height - 28);
    let ys: Vec<f64> = p.series.iter().flat_map(|s| s.2.iter().map(|q| q.1)).filter(|v| v.is_finite()).collect();
    if ys.is_empty() {
        return;
    }
    let (mut lo, mut hi) = ys.iter().fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let pad = ((hi - lo) * 0.05).max(hi.abs() * 1e-3).max(1e-12);
    lo -= pad;
    hi += pad;
    let frame = Frame { area: (left, right, top, bottom), x: x_range, y: (lo, hi) };
    let (px, py) = (|x: f64| frame.px(x), |y: f64| frame.py(y));
    // Epochs are whole numbers: no fractional ticks on the x axis.
    frame.draw_axes(c, true);
    c.text(left, p.top + 4, p.title, BLACK, 2);
    let mut legend_x = right;
    for (name, colour, points) in p.series.iter().rev() {
        legend_x -= Canvas::text_width(name, 1) + 30;
        c.line((legend_x, p.top + 12), (legend_x + 18, p.top + 12), *colour, 3);
        c.text(legend_x + 22, p.top + 8, name, BLACK, 1);
        let pts: Vec<(i64, i64)> = points.iter().filter(|q| q.1.is_finite()).map(|&(x, y)| (px(x), py(y))).collect();
        for w in pts.windows(2) {
            c.line(w[0], w[1], *colour, 2);
        }
        if pts.len() == 1 {
            c.line(pts[0], pts[0], *colour, 5);
        }
    }
}

/// One epoch of the training curves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochPoint {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Validation loss.
    pub valid_loss: f64,
    /// Learning rate at the epoch's end.
    pub lr: f64,
}

/// Draws the curves of `log` into `path` (PNG), atomically.
pub fn plot(log: &[EpochPoint], title: &str, path: &Path) -> std::io::Result<()> {
    let mut c = Canvas::new(960, 640);
    c.text(80, 8, title, BLACK, 2);
    let epochs: Vec<f64> = log.iter().map(|l| l.epoch as f64).collect();
    let x_range = (0.0f64.min(epochs.first().copied().unwrap_or(0.0)), epochs.last().copied().unwrap_or(1.0).max(1.0));
    let series = |f: fn(&EpochPoint) -> f64| log.iter().map(|l| (l.epoch as f64, f(l))).collect::<Vec<_>>();
    let loss = Panel {
        top: 30,
        height: 400,
        title: "cross-entropy per token",
        series: vec![("train", BLUE, series(|l| l.train_loss)), ("valid", ORANGE, series(|l| l.valid_loss))],
    };
    draw_panel(&mut c, &loss, x_range);
    let lr = Panel { top: 430, height: 190, title: "learning rate", series: vec![("lr", GREEN, series(|l| l.lr))] };
    draw_panel(&mut c, &lr, x_range);
    let xl = "epoch";
    c.text(c.w as i64 / 2 - Canvas::text_width(xl, 1) / 2, c.h as i64 - 14, xl, BLACK, 1);
    c.save(path)
}

/// Draws a scatter plot of `points` (x, y) into `path` (PNG), atomically: the axes labelled
/// `x_label` (below) and `y_label` (above the axis), the y range `y_range` when given, else the
/// data's. Used for FlexCode's CF share against popularity.
pub fn scatter(
    points: &[(f64, f64)],
    title: &str,
    x_label: &str,
    y_label: &str,
    y_range: Option<(f64, f64)>,
    path: &Path,
) -> std::io::Result<()> {
    let mut c = Canvas::new(960, 640);
    c.text(80, 8, title, BLACK, 2);
    let (left, right, top, bottom) = (80i64, c.w as i64 - 20, 60i64, c.h as i64 - 50);
    let finite: Vec<(f64, f64)> = points.iter().copied().filter(|p| p.0.is_finite() && p.1.is_finite()).collect();
    let range = |v: &mut dyn Iterator<Item = f64>| {
        let (lo, hi) = v.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
        if lo > hi {
            return (0.0, 1.0);
        }
        let pad = ((hi - lo) * 0.03).max(1e-6);
        (lo - pad, hi + pad)
    };
    let (x0, x1) = range(&mut finite.iter().map(|p| p.0));
    let (y0, y1) = y_range.unwrap_or_else(|| range(&mut finite.iter().map(|p| p.1)));
    let frame = Frame { area: (left, right, top, bottom), x: (x0, x1), y: (y0, y1) };
    let (px, py) = (|x: f64| frame.px(x), |y: f64| frame.py(y));
    frame.draw_axes(&mut c, false);
    c.text(left, top - 16, y_label, BLACK, 1);
    c.text((left + right) / 2 - Canvas::text_width(x_label, 1) / 2, c.h as i64 - 20, x_label, BLACK, 1);
    for &(x, y) in &finite {
        c.line((px(x), py(y)), (px(x), py(y)), BLUE, 3);
    }
    c.save(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(ticks(0.0, 1.0, 5), vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]);
        let t = ticks(3.2, 7.9, 5);
        assert!(t.first().unwrap() >= &3.2 && t.last().unwrap() <= &7.9 && t.len() >= 3);
        assert_eq!(label(0.25), "0.25");
        assert_eq!(label(5e-4), "5.0e-4");
    }

    #[test]
    fn writes_a_png_with_the_curves() {
        let log: Vec<EpochPoint> =
            (1..=5).map(|e| EpochPoint { epoch: e, train_loss: 5.0 / e as f64, valid_loss: 5.5 / e as f64, lr: 1e-3 }).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("training.png");
        plot(&log, "test", &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut buf).unwrap();
        // Both loss colours are drawn.
        let has = |c: Rgb| buf.chunks(3).any(|p| p == c);
        assert!(has(BLUE) && has(ORANGE) && has(GREEN));
    }

    #[test]
    fn scatter_writes_a_png_with_the_points() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scatter.png");
        let points: Vec<(f64, f64)> = (0..50).map(|i| (i as f64 * 0.1, (i % 7) as f64 / 7.0)).collect();
        scatter(&points, "share", "log(1 + count)", "a", Some((0.0, 1.0)), &path).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(std::fs::read(&path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut buf).unwrap();
        assert!(buf.chunks(3).any(|p| p == BLUE));
        scatter(&[], "empty", "x", "y", None, &path).unwrap();
    }
}
