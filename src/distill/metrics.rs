//! Training metrics: one JSON object per line (`metrics.jsonl`) and an SVG plot of the training
//! loss and the dev accuracy (`metrics.svg`).
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Record {
    /// A training step.
    Train {
        /// Optimiser steps done (1-based: the step this loss was computed at, before the update).
        step: usize,
        /// Epoch (0-based).
        epoch: usize,
        /// Training loss of the batch (the configured objective).
        loss: f32,
        /// The OT part, when computed.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        ot: Option<f32>,
        /// The MSE part, when computed.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        mse: Option<f32>,
        /// Learning rate used for the update.
        lr: f64,
        /// Global gradient norm before clipping.
        grad_norm: f32,
        /// Seconds this step took.
        step_s: f64,
        /// Seconds of training so far (across resumes).
        elapsed_s: f64,
    },
    /// A validation on the dev bitext (step 0 = before training: the zero-shot student).
    Dev(DevMetrics),
}

/// Validation figures on the dev bitext.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DevMetrics {
    /// Steps done.
    pub step: usize,
    /// Mean cosine between pooled student(x) and pooled teacher(e).
    pub mean_cos: f32,
    /// Top-1 accuracy of x → e retrieval within the dev set.
    pub accuracy: f32,
    /// The training objective on the dev pairs.
    pub loss: f32,
    /// Pairs used.
    pub pairs: usize,
    /// Top-1 accuracy of x → e where the teacher encodes e in the role an index gives it
    /// (`passage` when the student encodes queries): the search setting.
    #[serde(default)]
    pub search_accuracy: f32,
    /// Mean cosine between pooled student(x) and teacher(e) in that role.
    #[serde(default)]
    pub search_mean_cos: f32,
}

impl DevMetrics {
    /// One line for logs.
    pub fn summary(&self) -> String {
        format!(
            "accuracy {:.3}, mean cos {:.4}, search-setting accuracy {:.3} (mean cos {:.4}), loss {:.4}",
            self.accuracy, self.mean_cos, self.search_accuracy, self.search_mean_cos, self.loss
        )
    }
}

impl Record {
    /// The step the record belongs to.
    pub fn step(&self) -> usize {
        match self {
            Record::Train { step, .. } | Record::Dev(DevMetrics { step, .. }) => *step,
        }
    }
}

/// Appends records to `metrics.jsonl`.
pub struct MetricsLog {
    path: PathBuf,
    file: std::fs::File,
}

impl MetricsLog {
    /// Opens the log. With `keep_up_to = Some(step)` (a resume), earlier lines for steps
    /// `<= step` are kept and later ones dropped — they belong to work the checkpoint does not
    /// contain and will be redone. With `None`, the log starts empty.
    pub fn open(path: &Path, keep_up_to: Option<usize>) -> Result<Self> {
        let kept = match keep_up_to {
            Some(step) => read_records(path)
                .unwrap_or_default()
                .into_iter()
                .filter(|r| r.step() <= step)
                .collect(),
            None => Vec::new(),
        };
        let mut text = String::new();
        for r in &kept {
            text.push_str(&serde_json::to_string(r)?);
            text.push('\n');
        }
        super::cache::write_atomic(path, text.as_bytes())?;
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(Self { path: path.to_path_buf(), file })
    }

    /// Appends one record (flushed at once, so a crash keeps what was logged).
    pub fn push(&mut self, r: &Record) -> Result<()> {
        let line = serde_json::to_string(r)? + "\n";
        self.file
            .write_all(line.as_bytes())
            .with_context(|| format!("writing {}", self.path.display()))
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads `metrics.jsonl`; errors name the line.
pub fn read_records(path: &Path) -> Result<Vec<Record>> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let line = line.with_context(|| format!("{}:{}", path.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(serde_json::from_str(&line).with_context(|| format!("{}:{}", path.display(), i + 1))?);
    }
    Ok(out)
}

fn moving_average(xs: &[(f64, f64)], window: usize) -> Vec<(f64, f64)> {
    let w = window.max(1);
    let mut out = Vec::with_capacity(xs.len());
    let mut sum = 0.0;
    for i in 0..xs.len() {
        sum += xs[i].1;
        if i >= w {
            sum -= xs[i - w].1;
        }
        out.push((xs[i].0, sum / (i + 1).min(w) as f64));
    }
    out
}

/// Draws `metrics.svg`: training loss (raw and moving average) on top, dev accuracy and mean
/// cosine below.
pub fn plot(records: &[Record], path: &Path, title: &str) -> Result<()> {
    let loss: Vec<(f64, f64)> = records
        .iter()
        .filter_map(|r| match r {
            Record::Train { step, loss, .. } if loss.is_finite() => Some((*step as f64, *loss as f64)),
            _ => None,
        })
        .collect();
    let dev: Vec<&DevMetrics> = records
        .iter()
        .filter_map(|r| match r {
            Record::Dev(m) => Some(m),
            _ => None,
        })
        .collect();
    let max_step = loss
        .iter()
        .map(|p| p.0)
        .chain(dev.iter().map(|m| m.step as f64))
        .fold(1.0f64, f64::max);

    let root = SVGBackend::new(path, (900, 700)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| anyhow::anyhow!("drawing {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root = root.titled(title, ("sans-serif", 20)).map_err(|e| err(&e))?;
    let (top, bottom) = root.split_vertically(340);
    draw_loss(&top, &loss, max_step).map_err(|e| err(&e))?;
    draw_dev(&bottom, &dev, max_step).map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

type Panel<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type DrawResult<'a> = std::result::Result<(), DrawingAreaErrorKind<<SVGBackend<'a> as DrawingBackend>::ErrorType>>;

/// The top panel: the loss of every step and its moving average.
fn draw_loss<'a>(area: &Panel<'a>, loss: &[(f64, f64)], max_step: f64) -> DrawResult<'a> {
    let (lo, hi) = loss.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
    let (lo, hi) = if lo.is_finite() { (lo, hi.max(lo + 1e-6)) } else { (0.0, 1.0) };
    let pad = (hi - lo) * 0.05;
    let mut chart = ChartBuilder::on(area)
        .caption("training loss", ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..max_step, (lo - pad)..(hi + pad))?;
    chart.configure_mesh().x_desc("step").y_desc("loss").draw()?;
    chart
        .draw_series(LineSeries::new(loss.iter().copied(), RGBColor(160, 190, 230)))?
        .label("per step")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RGBColor(160, 190, 230)));
    let window = (loss.len() / 50).clamp(1, 100);
    chart
        .draw_series(LineSeries::new(moving_average(loss, window), BLUE.stroke_width(2)))?
        .label(format!("moving average ({window})"))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()
}

/// The bottom panel: dev accuracy and mean cosine, and the accuracy in the search setting.
fn draw_dev<'a>(area: &Panel<'a>, dev: &[&DevMetrics], max_step: f64) -> DrawResult<'a> {
    let mut chart = ChartBuilder::on(area)
        .caption("dev: top-1 accuracy x → e, mean cosine", ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..max_step, 0f64..1f64)?;
    chart.configure_mesh().x_desc("step").draw()?;
    // Old metrics files have no search-setting figures (they read back as 0): skip those.
    let search: Vec<&DevMetrics> = dev.iter().copied().filter(|m| m.search_accuracy > 0.0).collect();
    let series: [(&str, &[&DevMetrics], fn(&DevMetrics) -> f32, RGBColor); 3] = [
        ("accuracy", dev, |m| m.accuracy, RED),
        ("mean cosine", dev, |m| m.mean_cos, GREEN),
        ("accuracy, search setting", &search, |m| m.search_accuracy, RGBColor(230, 140, 0)),
    ];
    for (label, points, value, color) in series {
        let xy: Vec<(f64, f64)> = points.iter().map(|m| (m.step as f64, value(m) as f64)).collect();
        chart
            .draw_series(LineSeries::new(xy.iter().copied(), color.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(xy.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev_record(step: usize) -> DevMetrics {
        DevMetrics { step, mean_cos: 0.8, accuracy: 0.5, loss: 0.3, pairs: 5, search_accuracy: 0.6, search_mean_cos: 0.7 }
    }

    fn train(step: usize, loss: f32) -> Record {
        Record::Train { step, epoch: 0, loss, ot: Some(loss), mse: None, lr: 1e-5, grad_norm: 1.0, step_s: 0.1, elapsed_s: step as f64 }
    }

    #[test]
    fn log_truncates_on_resume_and_plot_writes_svg() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        let mut log = MetricsLog::open(&path, None).unwrap();
        for s in 1..=10 {
            log.push(&train(s, 1.0 / s as f32)).unwrap();
        }
        log.push(&Record::Dev(dev_record(10))).unwrap();
        drop(log);
        assert_eq!(read_records(&path).unwrap().len(), 11);
        let log = MetricsLog::open(&path, Some(6)).unwrap();
        drop(log);
        let kept = read_records(&path).unwrap();
        assert_eq!(kept.len(), 6);
        assert!(kept.iter().all(|r| r.step() <= 6));
        let svg = dir.path().join("m.svg");
        let mut all = kept.clone();
        all.push(Record::Dev(dev_record(6)));
        plot(&all, &svg, "test").unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(text.starts_with("<svg") && text.contains("polyline"), "{}", &text[..200.min(text.len())]);
    }
}
