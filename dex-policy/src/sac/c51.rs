//! The C51 distributional critic: projecting a shifted distribution onto the support, the expected value and the cross-entropy.

use candle_core::{D, Tensor};
use ndarray::{Array2, ArrayView2};

use crate::error::{Result, invalid};

/// Projects the distribution of `r + γ·(1 − done)·(z − shift)` onto the fixed support
/// `z` (C51's categorical projection, Bellemare et al. 2017, Algorithm 1).
///
/// `next_probs` is `B × atoms` (each row sums to 1), `rewards`, `not_done` and `shift`
/// have `B` entries (`shift` is SAC's `α·log π(a′|s′)`, 0 for plain C51). Returns the
/// target distribution, `B × atoms`.
///
/// # Errors
///
/// [`crate::Error::InvalidInput`] for mismatched lengths or a support that is not increasing.
pub fn c51_project(
    support: &[f32],
    next_probs: ArrayView2<'_, f32>,
    rewards: &[f32],
    not_done: &[f32],
    shift: &[f32],
    gamma: f32,
) -> Result<Array2<f32>> {
    let (b, atoms) = next_probs.dim();
    if atoms != support.len() || atoms < 2 {
        return Err(invalid(format!(
            "{atoms} probabilities per row for a support of {} atoms",
            support.len()
        )));
    }
    if rewards.len() != b || not_done.len() != b || shift.len() != b {
        return Err(invalid(
            "rewards, not_done and shift need one entry per row",
        ));
    }
    let (v_min, v_max) = (support[0], support[atoms - 1]);
    if v_min.partial_cmp(&v_max) != Some(std::cmp::Ordering::Less) {
        return Err(invalid("the support must increase"));
    }
    let dz = (v_max - v_min) / (atoms - 1) as f32;
    let mut out = Array2::<f32>::zeros((b, atoms));
    for i in 0..b {
        for j in 0..atoms {
            let p = next_probs[(i, j)];
            if p == 0.0 {
                continue;
            }
            let tz =
                (rewards[i] + gamma * not_done[i] * (support[j] - shift[i])).clamp(v_min, v_max);
            let pos = (tz - v_min) / dz;
            let l = (pos.floor() as usize).min(atoms - 1);
            let u = (pos.ceil() as usize).min(atoms - 1);
            if l == u {
                out[(i, l)] += p;
            } else {
                out[(i, l)] += p * (u as f32 - pos);
                out[(i, u)] += p * (pos - l as f32);
            }
        }
    }
    Ok(out)
}

/// Expected value per row of a critic's output: the scalar itself, or Σ softmax·z for
/// C51 (`support` given).
pub(super) fn expected_q(out: &Tensor, support: Option<&Tensor>) -> candle_core::Result<Tensor> {
    match support {
        Some(z) => candle_nn::ops::softmax(out, D::Minus1)?
            .broadcast_mul(z)?
            .sum(D::Minus1),
        None => out.squeeze(1),
    }
}

/// Cross-entropy of C51 logits against target distributions, averaged over rows.
pub(super) fn c51_cross_entropy(logits: &Tensor, target: &Tensor) -> candle_core::Result<Tensor> {
    (candle_nn::ops::log_softmax(logits, D::Minus1)? * target)?
        .sum(D::Minus1)?
        .mean_all()?
        .neg()
}
