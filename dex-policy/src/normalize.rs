//! Running mean and variance (parallel Welford), for observation normalisation and
//! reward scaling.

use ndarray::{Array1, Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// Running per-component mean and variance of a stream of vectors, in f64.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunningMeanStd {
    /// Per-component mean.
    pub mean: Vec<f64>,
    /// Per-component (population) variance.
    pub var: Vec<f64>,
    /// Number of vectors seen.
    pub count: f64,
}

impl RunningMeanStd {
    /// Empty statistics of width `dim` (mean 0, variance 1 until data arrives).
    pub fn new(dim: usize) -> Self {
        Self {
            mean: vec![0.0; dim],
            var: vec![1.0; dim],
            count: 0.0,
        }
    }

    /// Width.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Adds a batch (`B × dim`).
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidInput`] for the wrong width.
    pub fn update(&mut self, batch: ArrayView2<'_, f32>) -> Result<()> {
        if batch.ncols() != self.dim() {
            return Err(crate::error::Error::LengthMismatch {
                what: "normalisation statistics width",
                expected: self.dim(),
                got: batch.ncols(),
            });
        }
        let b = batch.nrows() as f64;
        if b == 0.0 {
            return Ok(());
        }
        let x = batch.mapv(f64::from);
        let mean: Array1<f64> = x
            .mean_axis(Axis(0))
            .unwrap_or_else(|| Array1::zeros(self.dim()));
        let var = x.var_axis(Axis(0), 0.0);
        let total = self.count + b;
        for j in 0..self.dim() {
            let delta = mean[j] - self.mean[j];
            let m2 = self.var[j] * self.count + var[j] * b + delta * delta * self.count * b / total;
            self.mean[j] += delta * b / total;
            self.var[j] = m2 / total;
        }
        self.count = total;
        Ok(())
    }

    /// Adds one scalar stream value (width 1).
    pub fn update_scalar(&mut self, values: &[f64]) {
        if self.dim() != 1 || values.is_empty() {
            return;
        }
        let b = values.len() as f64;
        let mean = values.iter().sum::<f64>() / b;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / b;
        let total = self.count + b;
        let delta = mean - self.mean[0];
        let m2 = self.var[0] * self.count + var * b + delta * delta * self.count * b / total;
        self.mean[0] += delta * b / total;
        self.var[0] = m2 / total;
        self.count = total;
    }

    /// `clip((x − mean) / sqrt(var + 1e-8), ±clip)`.
    pub fn normalize(&self, batch: ArrayView2<'_, f32>, clip: f32) -> Array2<f32> {
        let mut out = batch.to_owned();
        for mut row in out.axis_iter_mut(Axis(0)) {
            for (j, v) in row.iter_mut().enumerate() {
                let z = (f64::from(*v) - self.mean[j]) / (self.var[j] + 1e-8).sqrt();
                *v = (z as f32).clamp(-clip, clip);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn batches_combine_like_one() {
        let mut a = RunningMeanStd::new(2);
        a.update(array![[1.0f32, 0.0], [2.0, 0.0]].view()).unwrap();
        a.update(array![[3.0f32, 6.0]].view()).unwrap();
        assert!((a.mean[0] - 2.0).abs() < 1e-12 && (a.mean[1] - 2.0).abs() < 1e-12);
        assert!((a.var[0] - 2.0 / 3.0).abs() < 1e-12 && (a.var[1] - 8.0).abs() < 1e-12);
        assert_eq!(a.count, 3.0);
        assert!(a.update(array![[1.0f32]].view()).is_err());
        let mut s = RunningMeanStd::new(1);
        s.update_scalar(&[1.0, 2.0]);
        s.update_scalar(&[3.0]);
        assert!((s.mean[0] - 2.0).abs() < 1e-12 && (s.var[0] - 2.0 / 3.0).abs() < 1e-12);
    }
}
