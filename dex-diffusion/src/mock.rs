//! [`MockPredictor`]: a noise predictor for tests, deterministic, recording its calls.

use ndarray::{Array2, ArrayView2, Zip};

use crate::error::{Result, check_len};
use crate::sampler::NoisePredictor;
use crate::schedule::NoiseSchedule;

/// A noise predictor that knows the answer: with a target, it returns the exact noise
/// that separates each noised row from its target row (a perfect denoiser for a data
/// set of one point per row); without, zeros. Records every step it is asked about.
#[derive(Debug, Clone)]
pub struct MockPredictor {
    schedule: NoiseSchedule,
    target: Option<Array2<f32>>,
    /// The diffusion step of every call, in order.
    pub calls: Vec<usize>,
}

impl MockPredictor {
    /// A predictor that always answers zero noise.
    pub fn zeros(schedule: NoiseSchedule) -> Self {
        Self {
            schedule,
            target: None,
            calls: Vec::new(),
        }
    }

    /// The perfect predictor for clean samples `target` (`B × D`).
    pub fn exact(schedule: NoiseSchedule, target: Array2<f32>) -> Self {
        Self {
            schedule,
            target: Some(target),
            calls: Vec::new(),
        }
    }
}

impl NoisePredictor for MockPredictor {
    fn predict_noise(
        &mut self,
        x: ArrayView2<'_, f32>,
        t: usize,
        condition: ArrayView2<'_, f32>,
    ) -> Result<Array2<f32>> {
        check_len("condition rows", x.nrows(), condition.nrows())?;
        self.calls.push(t);
        let Some(target) = &self.target else {
            return Ok(Array2::zeros(x.dim()));
        };
        check_len("target rows", target.nrows(), x.nrows())?;
        check_len("target width", target.ncols(), x.ncols())?;
        let a = self.schedule.alpha_bar(t);
        let (sa, sn) = (a.sqrt() as f32, (1.0 - a).sqrt() as f32);
        Ok(Zip::from(&x)
            .and(target)
            .map_collect(|x, x0| (x - sa * x0) / sn))
    }
}
