//! DET plots (FNMR against FMR on normal-deviate axes, the convention of NIST and ISO/IEC
//! 19795-1) as PNG and SVG, for reports and papers.
//!
//! Rates of zero cannot sit on a deviate axis: they are drawn on the axis floor (half the finest
//! measurable rate, 1/n), so a curve hugging the bottom or left edge measured no
//! errors there.
//!
//! Text needs a TrueType font, found at run time: `VOUCH_PLOT_FONT`, else a few usual system
//! paths (DejaVu, Liberation, Noto, Helvetica). Without one the plot is refused with a
//! [`ErrorKind::Report`] error saying so; the rest of a report does not depend on it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::prelude::*;

use crate::error::{Error, ErrorKind, Result};
use crate::eval::metrics::RocPoint;
use crate::stats::{erfc, upper_normal_quantile};

/// One curve of a DET plot.
#[derive(Clone, Debug)]
pub struct DetCurve {
    /// Legend text.
    pub label: String,
    /// The curve's points (thresholds ascending or not; only the rates are drawn).
    pub points: Vec<RocPoint>,
    /// Comparisons on the FMR side (impostors / attacks): rates below `1 / n` cannot be
    /// measured and are drawn at the axis floor.
    pub impostors: usize,
}

/// Axis labels and title of a DET plot.
#[derive(Clone, Debug)]
pub struct DetLabels {
    /// The title over the plot.
    pub title: String,
    /// The x axis (e.g. "FMR", "APCER").
    pub x: String,
    /// The y axis (e.g. "FNMR", "BPCER").
    pub y: String,
}

/// Curve colours: the Okabe–Ito palette, told apart by colour-blind readers too.
const COLOURS: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
];

impl DetLabels {
    /// Labels of a verification DET plot: FMR across, FNMR up.
    pub fn verification(title: &str) -> DetLabels {
        DetLabels {
            title: title.to_string(),
            x: "FMR".into(),
            y: "FNMR".into(),
        }
    }
}

/// The rates the axes are labelled at.
/// (Spaced so their labels never touch on a 900-pixel plot.)
const TICKS: [f64; 11] = [1e-5, 1e-4, 1e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8];

/// Writes the DET plot of `curves` to `png` and `svg` (either may be `None`).
pub fn det_plot(
    curves: &[DetCurve],
    labels: &DetLabels,
    png: Option<&Path>,
    svg: Option<&Path>,
) -> Result<()> {
    if curves.is_empty()
        || curves
            .iter()
            .any(|c| c.points.is_empty() || c.impostors == 0)
    {
        return Err(Error::new(
            ErrorKind::Report,
            "a DET plot needs at least one curve with genuine and impostor scores",
        ));
    }
    register_font()?;
    // The axes reach half the finest measurable rate (1/n, kept within 0.001 %…1 %), so
    // curves that reach a rate of zero stop visibly at the floor rather than vanishing.
    let finest = curves
        .iter()
        .map(|c| 1.0 / c.impostors as f64)
        .fold(1.0, f64::min);
    let floor = (finest / 2.0).clamp(1e-5, 1e-2);
    if let Some(path) = png {
        let root = BitMapBackend::new(path, (900, 800)).into_drawing_area();
        draw(&root, curves, labels, floor).map_err(|e| plot_error(path, &e))?;
        root.present().map_err(|e| plot_error(path, &e))?;
    }
    if let Some(path) = svg {
        let root = SVGBackend::new(path, (900, 800)).into_drawing_area();
        draw(&root, curves, labels, floor).map_err(|e| plot_error(path, &e))?;
        root.present().map_err(|e| plot_error(path, &e))?;
    }
    Ok(())
}

fn plot_error(path: &Path, e: &dyn std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Report,
        format!("drawing {}: {e}", path.display()),
    )
}

/// The standard normal deviate of a rate (probit).
fn deviate(p: f64) -> f64 {
    -upper_normal_quantile(p)
}

/// A normal-deviate axis: values are deviates, drawn linearly, with ticks at round rates.
struct DeviateAxis {
    range: std::ops::Range<f64>,
    ticks: Vec<f64>,
}

impl Ranged for DeviateAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let share = (value - self.range.start) / (self.range.end - self.range.start);
        limit.0 + (share * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.range.clone()
    }
}

fn axis(floor: f64) -> DeviateAxis {
    DeviateAxis {
        range: deviate(floor)..deviate(0.9),
        ticks: TICKS
            .iter()
            .filter(|&&t| t >= floor)
            .map(|&t| deviate(t))
            .collect(),
    }
}

fn percent(z: &f64) -> String {
    let p = 0.5 * erfc(-z / std::f64::consts::SQRT_2) * 100.0;
    let text = format!("{p:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text} %")
}

fn draw<B: DrawingBackend>(
    root: &DrawingArea<B, plotters::coord::Shift>,
    curves: &[DetCurve],
    labels: &DetLabels,
    floor: f64,
) -> std::result::Result<(), Box<dyn std::error::Error + 'static>>
where
    B::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(root)
        .caption(&labels.title, ("sans-serif", 26))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(axis(floor), axis(floor))?;
    chart
        .configure_mesh()
        .x_desc(&labels.x)
        .y_desc(&labels.y)
        .x_label_formatter(&percent)
        .y_label_formatter(&percent)
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 18))
        .light_line_style(WHITE)
        .bold_line_style(BLACK.mix(0.15))
        .draw()?;
    // The EER line: where FMR = FNMR.
    chart.draw_series(LineSeries::new(
        [deviate(floor), deviate(0.9)].map(|z| (z, z)),
        BLACK.mix(0.3).stroke_width(1),
    ))?;
    for (k, curve) in curves.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()].to_rgba();
        let clamp = |r: f64| deviate(r.clamp(floor, 0.9));
        let points: Vec<(f64, f64)> = curve
            .points
            .iter()
            .map(|p| (clamp(p.fmr), clamp(p.fnmr)))
            .collect();
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
            .label(&curve.label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], colour.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.4))
        .draw()?;
    Ok(())
}

/// Registers a system TrueType font as plotters' "sans-serif", once per process.
fn register_font() -> Result<()> {
    static FONT: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    FONT.get_or_init(|| {
        let candidates: Vec<PathBuf> = std::env::var_os("VOUCH_PLOT_FONT")
            .map(PathBuf::from)
            .into_iter()
            .chain(
                [
                    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                    "/usr/share/fonts/TTF/DejaVuSans.ttf",
                    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
                    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
                    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
                    "/Library/Fonts/Arial.ttf",
                ]
                .map(PathBuf::from),
            )
            .collect();
        for path in &candidates {
            if let Ok(bytes) = std::fs::read(path) {
                // plotters keeps fonts for the life of the process; this happens once.
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return Ok(());
                }
            }
        }
        Err(format!(
            "no TrueType font for plot text (set VOUCH_PLOT_FONT, or install fonts-dejavu-core); looked in {}",
            candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
    .clone()
    .map_err(|m| Error::new(ErrorKind::Report, m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::metrics::det;
    use crate::stats::ScoreSet;

    #[test]
    fn draws_png_and_svg_or_says_why_not() {
        let g: Vec<f64> = (0..300).map(|i| 0.4 + f64::from(i) / 500.0).collect();
        let i: Vec<f64> = (0..3000).map(|i| f64::from(i) / 5000.0).collect();
        let set = ScoreSet::new(g, i).unwrap();
        let curve = DetCurve {
            label: "test".into(),
            points: det(&set, 200),
            impostors: 3000,
        };
        let labels = DetLabels {
            title: "DET".into(),
            x: "FMR".into(),
            y: "FNMR".into(),
        };
        let dir = tempfile::tempdir().unwrap();
        let (png, svg) = (dir.path().join("det.png"), dir.path().join("det.svg"));
        match det_plot(&[curve], &labels, Some(&png), Some(&svg)) {
            Ok(()) => {
                assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
                let text = std::fs::read_to_string(&svg).unwrap();
                assert!(text.contains("<svg") && text.contains("FNMR") && text.contains("1 %"));
            }
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Report);
                eprintln!("plot test skipped: {e}");
            }
        }
    }

    #[test]
    fn refuses_curves_without_impostors() {
        let labels = DetLabels {
            title: String::new(),
            x: String::new(),
            y: String::new(),
        };
        let err = det_plot(&[], &labels, None, None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Report);
    }
}
