//! The denoising network: DexGen's fully-connected UNet with FiLM conditioning, its
//! state encoder with GroupNorm, and a sinusoidal timestep embedding, on candle.
//!
//! DexGen (App. F, Fig. 10): a "standard U-Net" with its 1-D convolutions replaced by
//! fully connected layers, hidden 768, 3 encoder and 3 decoder blocks, FiLM conditioning,
//! a state encoder of 6 layers of 1024 with GroupNorm (groups of 8 channels), a timestep
//! encoder; it predicts the noise. Where the paper is silent, dex chooses (and
//! [`DenoiserConfig`] documents): ELU activations; the condition is the sum of the
//! projected state code and the embedded timestep; every block is FiLM-conditioned
//! (linear → GroupNorm → FiLM → ELU, with a residual connection); decoder blocks take
//! the matching encoder block's output concatenated (the UNet's skips); the timestep
//! embedding is sinusoidal over the step index, then two linear layers.

use candle_core::{D, DType, Module, Tensor};
use candle_nn::{GroupNorm, Linear, VarBuilder};
use dex_policy::fused;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Sizes of a [`Denoiser`]. The default is small for the CPU; [`DenoiserConfig::paper`]
/// is DexGen's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DenoiserConfig {
    /// Width of a motion: `T·K·3` (48 for T = 2 steps of K = 8 keypoints).
    pub motion_dim: usize,
    /// Width of the condition (the proprioception history and the mode one-hot).
    pub condition_dim: usize,
    /// Width of the UNet's blocks.
    pub hidden: usize,
    /// Encoder blocks (as many decoder blocks follow).
    pub blocks: usize,
    /// Layers of the state encoder.
    pub state_layers: usize,
    /// Width of the state encoder.
    pub state_hidden: usize,
    /// Channels per GroupNorm group (widths must be multiples of it).
    pub group_size: usize,
    /// Width of the sinusoidal timestep embedding (even).
    pub time_dim: usize,
}

impl Default for DenoiserConfig {
    /// Hidden 256, 2 + 2 blocks, a state encoder of 3 × 256: the CPU-scale model of
    /// the facts' reproduction plan.
    fn default() -> Self {
        Self {
            motion_dim: 48,
            condition_dim: 240,
            hidden: 256,
            blocks: 2,
            state_layers: 3,
            state_hidden: 256,
            group_size: 8,
            time_dim: 64,
        }
    }
}

impl DenoiserConfig {
    /// DexGen's sizes (App. F): hidden 768, 3 + 3 blocks, a state encoder of 6 × 1024,
    /// GroupNorm groups of 8.
    pub fn paper() -> Self {
        Self {
            hidden: 768,
            blocks: 3,
            state_layers: 6,
            state_hidden: 1024,
            ..Self::default()
        }
    }

    /// Checks the sizes.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] for a zero size, an odd `time_dim`, or a width that
    /// is not a multiple of `group_size`.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| Error::InvalidSetting {
            what: "denoiser config",
            reason,
        };
        if self.motion_dim == 0
            || self.hidden == 0
            || self.blocks == 0
            || self.state_layers == 0
            || self.state_hidden == 0
            || self.group_size == 0
            || self.time_dim == 0
        {
            return Err(bad(format!("sizes must be positive: {self:?}")));
        }
        if !self.time_dim.is_multiple_of(2) {
            return Err(bad(format!("time_dim must be even, got {}", self.time_dim)));
        }
        for (what, w) in [("hidden", self.hidden), ("state_hidden", self.state_hidden)] {
            if !w.is_multiple_of(self.group_size) {
                return Err(bad(format!(
                    "{what} {w} is not a multiple of group_size {}",
                    self.group_size
                )));
            }
        }
        Ok(())
    }
}

/// `sin`/`cos` features of the diffusion step indices `t` (`B` values), `dim` wide:
/// frequencies 10000^(−i/(dim/2)), as transformers embed positions.
pub fn timestep_embedding(t: &[f32], dim: usize) -> Vec<f32> {
    let half = dim / 2;
    let mut out = Vec::with_capacity(t.len() * dim);
    for &ti in t {
        for i in 0..half {
            let f = (-(10_000f32.ln()) * i as f32 / half as f32).exp();
            out.push((ti * f).sin());
        }
        for i in 0..half {
            let f = (-(10_000f32.ln()) * i as f32 / half as f32).exp();
            out.push((ti * f).cos());
        }
    }
    out
}

/// Linear → GroupNorm → ELU (the state encoder's layer).
#[derive(Clone)]
struct NormLayer {
    linear: Linear,
    norm: GroupNorm,
}

impl NormLayer {
    fn new(input: usize, output: usize, group_size: usize, vb: &VarBuilder<'_>) -> Result<Self> {
        Ok(Self {
            linear: candle_nn::linear(input, output, vb.pp("linear"))?,
            norm: candle_nn::group_norm(output / group_size, output, 1e-5, vb.pp("norm"))?,
        })
    }

    fn norm(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, c) = x.dims2()?;
        self.norm.forward(&x.reshape((b, c, 1))?)?.reshape((b, c))
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        fused::elu(&self.norm(&fused::linear(x, &self.linear)?)?, 1.0)
    }
}

/// The precision of the weights a DDIM step streams (the UNet's input, block, skip and
/// output layers) at inference. Conditioning, FiLM projections, norms, activations and
/// the arithmetic's accumulation stay in f32 either way; training always uses f32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Full precision (the default).
    #[default]
    F32,
    /// IEEE half precision: half the bytes per step. A batch-1 step is bound by the speed
    /// at which it streams its weights, so this is where the time goes down.
    F16,
}

impl std::str::FromStr for Precision {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f32" => Ok(Precision::F32),
            "f16" => Ok(Precision::F16),
            other => Err(Error::InvalidSetting {
                what: "precision",
                reason: format!("`{other}`: expected `f32` or `f16`"),
            }),
        }
    }
}

/// `x · wᵀ + b` for a step layer: with half-precision weights the input is rounded to
/// f16 for the product (candle's CPU matmul accumulates f16 products in f32) and the
/// result brought back to f32 before the f32 bias.
fn step_linear(x: &Tensor, layer: &Linear) -> candle_core::Result<Tensor> {
    if layer.weight().dtype() != DType::F16 {
        return fused::linear(x, layer);
    }
    let y = x
        .to_dtype(DType::F16)?
        .matmul(&layer.weight().t()?)?
        .to_dtype(DType::F32)?;
    match layer.bias() {
        Some(b) => y.broadcast_add(b),
        None => Ok(y),
    }
}

/// `layer` with its weight (not its bias) in `dtype`.
fn with_weight_dtype(layer: &Linear, dtype: DType) -> candle_core::Result<Linear> {
    Ok(Linear::new(
        layer.weight().to_dtype(dtype)?,
        layer.bias().cloned(),
    ))
}

/// One UNet block: linear → GroupNorm → FiLM(γ, β from the condition) → ELU, plus a
/// residual projection of the input.
#[derive(Clone)]
struct FilmBlock {
    layer: NormLayer,
    film: Linear,
    skip: Option<Linear>,
}

impl FilmBlock {
    fn new(
        input: usize,
        hidden: usize,
        config: &DenoiserConfig,
        vb: &VarBuilder<'_>,
    ) -> Result<Self> {
        Ok(Self {
            layer: NormLayer::new(input, hidden, config.group_size, &vb.pp("layer"))?,
            film: candle_nn::linear(hidden, 2 * hidden, vb.pp("film"))?,
            skip: if input == hidden {
                None
            } else {
                Some(candle_nn::linear(input, hidden, vb.pp("skip"))?)
            },
        })
    }

    /// The block, with the FiLM projection of its condition given.
    fn forward_film(&self, x: &Tensor, film: &Tensor) -> candle_core::Result<Tensor> {
        let h = self.layer.norm(&step_linear(x, &self.layer.linear)?)?;
        let hidden = h.dim(D::Minus1)?;
        let gamma = film.narrow(D::Minus1, 0, hidden)?;
        let beta = film.narrow(D::Minus1, hidden, hidden)?;
        let h = fused::elu(&((h * (gamma + 1.0)?)? + beta)?, 1.0)?;
        let residual = match &self.skip {
            Some(s) => step_linear(x, s)?,
            None => x.clone(),
        };
        h + residual
    }
}

/// DexGen's denoiser: predicts the noise in a noised motion, given the diffusion step
/// and the condition (see the module docs).
#[derive(Clone)]
pub struct Denoiser {
    config: DenoiserConfig,
    state: Vec<NormLayer>,
    state_out: Linear,
    time1: Linear,
    time2: Linear,
    input: Linear,
    down: Vec<FilmBlock>,
    up: Vec<FilmBlock>,
    output: Linear,
}

impl std::fmt::Debug for Denoiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Denoiser")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Denoiser {
    /// Builds the network's variables under `vb`.
    ///
    /// # Errors
    ///
    /// A bad config ([`DenoiserConfig::validate`]) or a tensor error.
    pub fn new(config: &DenoiserConfig, vb: &VarBuilder<'_>) -> Result<Self> {
        config.validate()?;
        let c = config;
        let mut state = Vec::with_capacity(c.state_layers);
        let mut width = c.condition_dim.max(1);
        for i in 0..c.state_layers {
            state.push(NormLayer::new(
                width,
                c.state_hidden,
                c.group_size,
                &vb.pp(format!("state{i}")),
            )?);
            width = c.state_hidden;
        }
        let down = (0..c.blocks)
            .map(|i| FilmBlock::new(c.hidden, c.hidden, c, &vb.pp(format!("down{i}"))))
            .collect::<Result<Vec<_>>>()?;
        let up = (0..c.blocks)
            .map(|i| FilmBlock::new(2 * c.hidden, c.hidden, c, &vb.pp(format!("up{i}"))))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            config: config.clone(),
            state,
            state_out: candle_nn::linear(c.state_hidden, c.hidden, vb.pp("state_out"))?,
            time1: candle_nn::linear(c.time_dim, c.hidden, vb.pp("time1"))?,
            time2: candle_nn::linear(c.hidden, c.hidden, vb.pp("time2"))?,
            input: candle_nn::linear(c.motion_dim, c.hidden, vb.pp("input"))?,
            down,
            up,
            output: candle_nn::linear(c.hidden, c.motion_dim, vb.pp("output"))?,
        })
    }

    /// The sizes.
    pub fn config(&self) -> &DenoiserConfig {
        &self.config
    }

    /// The condition code of a batch: the state encoder's output projected, `B × hidden`
    /// (computed once per control step: it does not change between DDIM steps).
    ///
    /// # Errors
    ///
    /// Tensor errors (a condition of the wrong width).
    pub fn encode_condition(&self, condition: &Tensor) -> Result<Tensor> {
        let mut h = condition.clone();
        for layer in &self.state {
            h = layer.forward(&h)?;
        }
        Ok(fused::linear(&h, &self.state_out)?)
    }

    /// Predicted noise `B × motion_dim` for noised motions `x` at steps whose sinusoidal
    /// embeddings are `time` (`B × time_dim`, see [`timestep_embedding`]), with the
    /// condition code of [`Denoiser::encode_condition`].
    ///
    /// # Errors
    ///
    /// Tensor errors (shapes).
    pub fn forward(&self, x: &Tensor, time: &Tensor, condition_code: &Tensor) -> Result<Tensor> {
        let c = (condition_code + self.time_code(time)?)?;
        let films = self
            .down
            .iter()
            .chain(&self.up)
            .map(|b| fused::linear(&c, &b.film))
            .collect::<candle_core::Result<Vec<_>>>()?;
        self.forward_films(x, &films)
    }

    /// The embedded timestep code (`B × hidden`) of sinusoidal features `time`.
    fn time_code(&self, time: &Tensor) -> Result<Tensor> {
        Ok(fused::linear(
            &fused::elu(&fused::linear(time, &self.time1)?, 1.0)?,
            &self.time2,
        )?)
    }

    /// The condition-code part of every block's FiLM projection (encoder blocks, then
    /// decoder blocks; `B × 2·hidden` each, without the bias). The projection is linear
    /// in `code + time`, so this part plus [`Denoiser::film_time_parts`] is what
    /// [`Denoiser::forward`] computes: at inference the code part is computed once per
    /// control step and the time part once per DDIM step index, instead of every block's
    /// projection at every step.
    ///
    /// # Errors
    ///
    /// Tensor errors (shapes).
    pub fn film_code_parts(&self, condition_code: &Tensor) -> Result<Vec<Tensor>> {
        self.down
            .iter()
            .chain(&self.up)
            .map(|b| Ok(condition_code.matmul(&b.film.weight().t()?)?))
            .collect()
    }

    /// The timestep part of every block's FiLM projection (`1 × 2·hidden` each, with the
    /// bias) for sinusoidal features `time` of one step (see
    /// [`Denoiser::film_code_parts`]).
    ///
    /// # Errors
    ///
    /// Tensor errors (shapes).
    pub fn film_time_parts(&self, time: &Tensor) -> Result<Vec<Tensor>> {
        let t = self.time_code(time)?;
        self.down
            .iter()
            .chain(&self.up)
            .map(|b| Ok(fused::linear(&t, &b.film)?))
            .collect()
    }

    /// A copy for inference whose step layers (input, block, skip and output) keep their
    /// weights in `precision` (see [`Precision`]); the rest is shared with `self`.
    ///
    /// # Errors
    ///
    /// Tensor errors (the conversion).
    pub fn with_step_precision(&self, precision: Precision) -> Result<Denoiser> {
        let dtype = match precision {
            Precision::F32 => DType::F32,
            Precision::F16 => DType::F16,
        };
        let block = |b: &FilmBlock| -> candle_core::Result<FilmBlock> {
            Ok(FilmBlock {
                layer: NormLayer {
                    linear: with_weight_dtype(&b.layer.linear, dtype)?,
                    norm: b.layer.norm.clone(),
                },
                film: b.film.clone(),
                skip: b
                    .skip
                    .as_ref()
                    .map(|s| with_weight_dtype(s, dtype))
                    .transpose()?,
            })
        };
        Ok(Denoiser {
            input: with_weight_dtype(&self.input, dtype)?,
            down: self
                .down
                .iter()
                .map(block)
                .collect::<candle_core::Result<_>>()?,
            up: self
                .up
                .iter()
                .map(block)
                .collect::<candle_core::Result<_>>()?,
            output: with_weight_dtype(&self.output, dtype)?,
            ..self.clone()
        })
    }

    /// As [`Denoiser::forward`], from the two parts of the FiLM projections
    /// ([`Denoiser::film_code_parts`], [`Denoiser::film_time_parts`]); the time parts
    /// broadcast over the batch.
    ///
    /// # Errors
    ///
    /// Tensor errors (shapes, a wrong number of parts).
    pub fn forward_parts(
        &self,
        x: &Tensor,
        code_parts: &[Tensor],
        time_parts: &[Tensor],
    ) -> Result<Tensor> {
        let films = code_parts
            .iter()
            .zip(time_parts)
            .map(|(c, t)| c.broadcast_add(t))
            .collect::<candle_core::Result<Vec<_>>>()?;
        self.forward_films(x, &films)
    }

    fn forward_films(&self, x: &Tensor, films: &[Tensor]) -> Result<Tensor> {
        if films.len() != self.down.len() + self.up.len() {
            return Err(Error::InvalidSetting {
                what: "denoiser",
                reason: format!(
                    "{} FiLM projections for {} blocks",
                    films.len(),
                    self.down.len() + self.up.len()
                ),
            });
        }
        let (down_films, up_films) = films.split_at(self.down.len());
        let mut h = step_linear(x, &self.input)?;
        let mut skips = Vec::with_capacity(self.down.len());
        for (block, film) in self.down.iter().zip(down_films) {
            h = block.forward_film(&h, film)?;
            skips.push(h.clone());
        }
        for (block, film) in self.up.iter().zip(up_films) {
            let skip = skips.pop().ok_or(Error::InvalidSetting {
                what: "denoiser",
                reason: "more decoder than encoder blocks".into(),
            })?;
            h = block.forward_film(&Tensor::cat(&[&h, &skip], D::Minus1)?, film)?;
        }
        Ok(step_linear(&h, &self.output)?)
    }
}
