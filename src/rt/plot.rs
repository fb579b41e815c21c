//! Training curves as an SVG picture (plotters' SVG backend: no system libraries,
//! no fonts needed; the viewer draws the text), and the atomic file writes the
//! run-time's pictures and lists share.

use super::fit::FitReport;
use super::Error;
use plotters::prelude::*;
use std::path::Path;

/// Draws the loss and (for classifiers) the accuracy per epoch, training and
/// validation, each with axes and a legend, and writes the SVG to `path`
/// atomically.
pub fn training_svg(report: &FitReport, path: impl AsRef<Path>) -> Result<(), Error> {
    let path = path.as_ref();
    let svg = training_svg_string(report).map_err(|message| Error::Format {
        path: path.display().to_string(),
        message,
    })?;
    super::atomic::write(path, svg.as_bytes())
}

const TRAIN: RGBColor = RGBColor(31, 119, 180);
const VALIDATION: RGBColor = RGBColor(255, 127, 14);

/// One curve: its name, colour and `(epoch, value)` points (1-based epochs).
struct Curve {
    name: &'static str,
    color: RGBColor,
    points: Vec<(i64, f64)>,
}

/// The SVG text of [`training_svg`].
pub fn training_svg_string(report: &FitReport) -> Result<String, String> {
    let history = &report.history;
    if history.is_empty() {
        return Err("the training report has no epochs to draw".into());
    }
    let curve = |name, color, value: &dyn Fn(&super::fit::EpochReport) -> Option<f64>| Curve {
        name,
        color,
        points: history
            .iter()
            .filter_map(|e| value(e).filter(|v| v.is_finite()).map(|v| (e.epoch as i64 + 1, v)))
            .collect(),
    };
    let loss = vec![
        curve("training", TRAIN, &|e| Some(e.train_loss)),
        curve("validation", VALIDATION, &|e| e.validation.map(|v| v.loss)),
    ];
    let accuracy = vec![
        curve("training", TRAIN, &|e| e.train_accuracy.map(|a| a * 100.0)),
        curve("validation", VALIDATION, &|e| {
            e.validation.and_then(|v| v.accuracy).map(|a| a * 100.0)
        }),
    ];
    let has_accuracy = accuracy.iter().any(|c| !c.points.is_empty());
    let last = history.iter().map(|e| e.epoch as i64 + 1).max().unwrap_or(1);
    let first = history.iter().map(|e| e.epoch as i64 + 1).min().unwrap_or(1);
    // One epoch still gets an axis of some width.
    let epochs = if first == last {
        first - 1..last + 1
    } else {
        first..last
    };
    let size = if has_accuracy { (1000, 420) } else { (560, 420) };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let panels = if has_accuracy {
            root.split_evenly((1, 2))
        } else {
            vec![root.clone()]
        };
        let top = loss.iter().flat_map(|c| &c.points).map(|p| p.1).fold(0.0f64, f64::max);
        let top = if top > 0.0 { top * 1.08 } else { 1.0 };
        panel(&panels[0], "Loss", "loss", epochs.clone(), 0.0..top, &loss)?;
        if has_accuracy {
            let low = accuracy
                .iter()
                .flat_map(|c| &c.points)
                .map(|p| p.1)
                .fold(100.0f64, f64::min);
            // From a round ten below the lowest point to 100%.
            let low = ((low - 2.0) / 10.0).floor().clamp(0.0, 9.0) * 10.0;
            panel(&panels[1], "Accuracy", "accuracy (%)", epochs, low..100.5, &accuracy)?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

fn panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    title: &str,
    y_name: &str,
    epochs: std::ops::Range<i64>,
    values: std::ops::Range<f64>,
    curves: &[Curve],
) -> Result<(), String> {
    let text = |e: &dyn std::fmt::Display| e.to_string();
    let span = (epochs.end - epochs.start).max(1) as usize;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 22))
        .margin(18)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(epochs, values)
        .map_err(|e| text(&e))?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_name)
        .x_labels(span.min(10) + 1)
        .x_label_formatter(&|x| x.to_string())
        .y_labels(8)
        .y_label_formatter(&|y| {
            if y.abs() >= 10.0 {
                format!("{y:.0}")
            } else {
                format!("{y:.2}")
            }
        })
        .light_line_style(RGBColor(235, 235, 235))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .draw()
        .map_err(|e| text(&e))?;
    let mut labelled = false;
    for c in curves.iter().filter(|c| !c.points.is_empty()) {
        let color = c.color;
        chart
            .draw_series(LineSeries::new(c.points.iter().copied(), color.stroke_width(2)).point_size(3))
            .map_err(|e| text(&e))?
            .label(c.name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(2)));
        labelled = true;
    }
    if labelled {
        chart
            .configure_series_labels()
            .position(if title == "Loss" {
                SeriesLabelPosition::UpperRight
            } else {
                SeriesLabelPosition::LowerRight
            })
            .label_font(("sans-serif", 14))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(160, 160, 160))
            .draw()
            .map_err(|e| text(&e))?;
    }
    Ok(())
}
