//! `metrics.csv` of a training run: one row per iteration, and the windowed success
//! and return curve a plot needs.

use std::collections::VecDeque;
use std::io::Write;
use std::path::Path;

use crate::error::Result;
use crate::train::Metrics;

/// Appends one row per iteration to `metrics.csv` (iteration, wall time, environment
/// steps, episodes, success rate, mean return, the windowed success and return, then
/// the algorithm's own figures) and keeps the windowed curve. Resuming reads the rows
/// already there and continues the wall-clock axis.
#[derive(Debug)]
pub struct MetricsLog {
    file: std::fs::File,
    header_written: bool,
    curve: Vec<(f64, f64, f64)>,
    window: VecDeque<(bool, f64)>,
    window_len: usize,
    time_offset: f64,
}

impl MetricsLog {
    /// Opens `path`: appending (and reading the curve so far) when `resume`, else
    /// truncating. The success window holds the last `window_len` episodes.
    ///
    /// # Errors
    ///
    /// I/O errors.
    pub fn open(path: &Path, resume: bool, window_len: usize) -> Result<Self> {
        let mut curve = Vec::new();
        let mut time_offset = 0.0;
        let mut header_written = false;
        if resume && path.exists() {
            let text = std::fs::read_to_string(path)?;
            let mut lines = text.lines();
            if let Some(header) = lines.next() {
                header_written = true;
                let cols: Vec<&str> = header.split(',').collect();
                let col = |name: &str| cols.iter().position(|c| *c == name);
                let (tw, sw, rw) = (col("wall_s"), col("success_window"), col("return_window"));
                for line in lines {
                    let v: Vec<f64> = line
                        .split(',')
                        .map(|x| x.parse().unwrap_or(f64::NAN))
                        .collect();
                    let get =
                        |c: Option<usize>| c.and_then(|c| v.get(c).copied()).unwrap_or(f64::NAN);
                    let t = get(tw);
                    if t.is_finite() {
                        time_offset = t;
                    }
                    curve.push((t / 60.0, get(sw), get(rw)));
                }
            }
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(resume)
            .write(true)
            .truncate(!resume)
            .open(path)?;
        Ok(Self {
            file,
            header_written,
            curve,
            window: VecDeque::new(),
            window_len,
            time_offset,
        })
    }

    /// Records one iteration at `wall_s` seconds into the run; returns the windowed
    /// success (NaN before any episode ended).
    ///
    /// # Errors
    ///
    /// I/O errors.
    pub fn record(&mut self, m: &Metrics, wall_s: f64) -> Result<f64> {
        for o in episode_outcomes(m) {
            self.window.push_back(o);
            if self.window.len() > self.window_len {
                self.window.pop_front();
            }
        }
        let (sw, rw) = if self.window.is_empty() {
            (f64::NAN, f64::NAN)
        } else {
            let k = self.window.len() as f64;
            (
                self.window.iter().filter(|o| o.0).count() as f64 / k,
                self.window.iter().map(|o| o.1).sum::<f64>() / k,
            )
        };
        let t = self.time_offset + wall_s;
        if !self.header_written {
            let mut h = String::from(
                "iteration,wall_s,env_steps,episodes,success_rate,mean_return,success_window,return_window",
            );
            for (name, _) in &m.extra {
                h.push(',');
                h.push_str(name);
            }
            writeln!(self.file, "{h}")?;
            self.header_written = true;
        }
        let mut row = format!(
            "{},{t:.3},{},{},{},{},{sw},{rw}",
            m.iteration, m.env_steps, m.episodes, m.success_rate, m.mean_return
        );
        for (_, v) in &m.extra {
            row.push_str(&format!(",{v}"));
        }
        writeln!(self.file, "{row}")?;
        self.curve.push((t / 60.0, sw, rw));
        Ok(sw)
    }

    /// Episodes in the success window now.
    pub fn window_filled(&self) -> usize {
        self.window.len()
    }

    /// The window's length.
    pub fn window_len(&self) -> usize {
        self.window_len
    }

    /// `(wall-clock minutes, windowed success, windowed return)` per iteration.
    pub fn curve(&self) -> &[(f64, f64, f64)] {
        &self.curve
    }

    /// Flushes the file.
    ///
    /// # Errors
    ///
    /// I/O errors.
    pub fn flush(&mut self) -> Result<()> {
        Ok(self.file.flush()?)
    }
}

/// Success and return of the episodes that ended in an iteration, as the window needs
/// them (the metrics give counts and means; successes first is fine for a window).
fn episode_outcomes(m: &Metrics) -> Vec<(bool, f64)> {
    if m.episodes == 0 {
        return Vec::new();
    }
    let successes = (m.success_rate * m.episodes as f64).round() as usize;
    (0..m.episodes)
        .map(|k| (k < successes, m.mean_return))
        .collect()
}
