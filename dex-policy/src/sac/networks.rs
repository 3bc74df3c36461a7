//! The actor, the observation layout (state and image parts), the critics' shape and the actor loss.

use candle_core::{D, Module, Tensor};
use candle_nn::VarBuilder;
use ndarray::{Array2, ArrayView2};

use crate::convert::to_tensor;
use crate::encoders::{CnnConfig, CnnEncoder};
use crate::error::{Result, invalid};
use crate::nets::{Mlp, MlpConfig};

use super::c51::*;
use super::config::*;

/// The tanh-Gaussian actor: an MLP giving mean and log std of a Gaussian whose
/// sample is squashed by tanh into (−1, 1), then scaled to the action bounds.
pub(super) struct Actor {
    pub(super) net: Mlp,
    pub(super) action_dim: usize,
    pub(super) low: Vec<f32>,
    pub(super) high: Vec<f32>,
}

impl Actor {
    pub(super) fn new(
        config: &SacConfig,
        obs_dim: usize,
        low: &[f32],
        high: &[f32],
        vb: &VarBuilder<'_>,
    ) -> Result<Self> {
        let ad = low.len();
        let net = Mlp::new(
            &MlpConfig {
                input: obs_dim,
                hidden: config.hidden.clone(),
                output: 2 * ad,
                activation: config.activation,
                layer_norm: config.layer_norm,
            },
            vb,
        )?;
        Ok(Self {
            net,
            action_dim: ad,
            low: low.to_vec(),
            high: high.to_vec(),
        })
    }

    /// Mean and log std (bounded smoothly to [LOG_STD_MIN, LOG_STD_MAX]).
    pub(super) fn dist(&self, x: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let out = self.net.forward(x)?;
        let mu = out.narrow(1, 0, self.action_dim)?;
        let raw = out.narrow(1, self.action_dim, self.action_dim)?;
        let log_std = ((raw.tanh()? + 1.0)? * (0.5 * (LOG_STD_MAX - LOG_STD_MIN)))? + LOG_STD_MIN;
        Ok((mu, log_std?))
    }

    /// Reparameterised sample in (−1, 1) and its log-density (`B`), given noise `eps`.
    pub(super) fn sample(&self, x: &Tensor, eps: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let (mu, log_std) = self.dist(x)?;
        let u = (&mu + (log_std.exp()? * eps)?)?;
        let a = u.tanh()?;
        // log N(u; mu, std) − Σ log(1 − tanh²u), the latter as 2(log 2 − u − softplus(−2u)).
        let gauss = ((eps.sqr()? * -0.5)? - &log_std)? - 0.5 * (2.0 * std::f64::consts::PI).ln();
        let m2u = (&u * -2.0)?;
        let softplus = (m2u.relu()? + ((m2u.abs()?.neg()?.exp()? + 1.0)?.log()?))?;
        let log_det = (((u.neg()? + std::f64::consts::LN_2)? - softplus)? * 2.0)?;
        let logp = (gauss? - log_det)?.sum(D::Minus1)?;
        Ok((a, logp))
    }

    /// Scales (−1, 1) to the action bounds.
    pub(super) fn scale(&self, a: &mut Array2<f32>) {
        for mut row in a.rows_mut() {
            for ((v, l), h) in row.iter_mut().zip(&self.low).zip(&self.high) {
                *v = l + 0.5 * (*v + 1.0) * (h - l);
            }
        }
    }

    /// Maps environment actions back to (−1, 1).
    pub(super) fn unscale(&self, a: &mut Array2<f32>) {
        for mut row in a.rows_mut() {
            for ((v, l), h) in row.iter_mut().zip(&self.low).zip(&self.high) {
                let span = h - l;
                *v = if span > 0.0 {
                    2.0 * (*v - l) / span - 1.0
                } else {
                    0.0
                };
            }
        }
    }
}

/// Where the image sits in a flat observation: the last `H·W` values, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ObsLayout {
    pub(super) obs_dim: usize,
    pub(super) image: Option<(usize, usize)>,
}

impl ObsLayout {
    pub(super) fn new(obs_dim: usize, image: Option<(usize, usize)>) -> Result<Self> {
        if let Some((h, w)) = image
            && (h * w == 0 || h * w >= obs_dim)
        {
            return Err(invalid(format!(
                "a {h}×{w} image needs observations wider than {} values (some state \
                 besides the image); they have {obs_dim}",
                h * w
            )));
        }
        Ok(Self { obs_dim, image })
    }

    pub(super) fn from_meta(obs_dim: usize, image: &[usize]) -> Result<Self> {
        match image {
            [] => Self::new(obs_dim, None),
            [h, w] => Self::new(obs_dim, Some((*h, *w))),
            other => Err(invalid(format!(
                "image shape {other:?}: expected [] or [height, width]"
            ))),
        }
    }

    pub(super) fn image_len(&self) -> usize {
        self.image.map_or(0, |(h, w)| h * w)
    }

    pub(super) fn state_dim(&self) -> usize {
        self.obs_dim - self.image_len()
    }

    /// The encoder's config with the image size filled in, when there is an image.
    pub(super) fn cnn(&self, config: &SacConfig) -> Option<CnnConfig> {
        self.image.map(|(height, width)| CnnConfig {
            height,
            width,
            in_channels: 1,
            ..config.cnn.clone()
        })
    }

    /// Width of the actor's and critics' input.
    pub(super) fn feature_dim(&self, config: &SacConfig) -> usize {
        self.state_dim() + self.image.map_or(0, |_| config.cnn.output)
    }

    pub(super) fn meta(&self) -> Vec<usize> {
        self.image.map_or_else(Vec::new, |(h, w)| vec![h, w])
    }

    /// The state part and the image quantised to bytes (`round(255·v)`, `v` clamped to
    /// `[0, 1]`).
    pub(super) fn split(&self, obs: ArrayView2<'_, f32>) -> (Array2<f32>, Array2<u8>) {
        let sd = self.state_dim();
        let (states, images) = obs.split_at(ndarray::Axis(1), sd);
        let states = states.to_owned();
        let images = images.mapv(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8);
        (states, images)
    }

    /// `B × H·W` bytes as a `B × H × W` tensor of values in `[0, 1]`.
    pub(super) fn image_tensor(&self, images: ArrayView2<'_, u8>) -> Result<Option<Tensor>> {
        let Some((h, w)) = self.image else {
            return Ok(None);
        };
        let b = images.nrows();
        let v: Vec<f32> = images.iter().map(|x| f32::from(*x) / 255.0).collect();
        Ok(Some(Tensor::from_vec(
            v,
            (b, h, w),
            &candle_core::Device::Cpu,
        )?))
    }

    /// Network input for raw observations: the state part, then the encoder's
    /// features of the quantised image.
    pub(super) fn input(
        &self,
        enc: Option<&CnnEncoder>,
        obs: ArrayView2<'_, f32>,
    ) -> Result<Tensor> {
        if self.image.is_none() {
            return to_tensor(obs);
        }
        let (states, images) = self.split(obs);
        let img = self.image_tensor(images.view())?;
        Ok(features(enc, &to_tensor(states.view())?, img.as_ref())?)
    }
}

/// The state features, then the encoder's image features when both are given.
pub(super) fn features(
    enc: Option<&CnnEncoder>,
    states: &Tensor,
    images: Option<&Tensor>,
) -> candle_core::Result<Tensor> {
    match (enc, images) {
        (Some(e), Some(i)) => Tensor::cat(&[states, &e.forward(i)?], 1),
        _ => Ok(states.clone()),
    }
}

/// SAC's actor loss `mean(α·log π(a|s) − min(Q1, Q2)(s, a))` with `a` the
/// reparameterised sample for noise `eps`; also returns log π and min Q.
pub(super) fn actor_loss(
    actor: &Actor,
    critics: &[Mlp; 2],
    support: Option<&Tensor>,
    x: &Tensor,
    eps: &Tensor,
    alpha: f64,
) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
    let (a, logp) = actor.sample(x, eps)?;
    let xa = Tensor::cat(&[x, &a], 1)?;
    let q1 = expected_q(&critics[0].forward(&xa)?, support)?;
    let q2 = expected_q(&critics[1].forward(&xa)?, support)?;
    let q = q1.minimum(&q2)?;
    let loss = ((&logp * alpha)? - &q)?.mean_all()?;
    Ok((loss, logp, q))
}

pub(super) fn critic_config(config: &SacConfig, obs_dim: usize, action_dim: usize) -> MlpConfig {
    MlpConfig {
        input: obs_dim + action_dim,
        hidden: config.hidden.clone(),
        output: if config.distributional {
            config.atoms
        } else {
            1
        },
        activation: config.activation,
        layer_norm: config.layer_norm,
    }
}
