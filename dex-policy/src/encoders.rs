//! Observation encoders on candle-nn: a small CNN for depth images, a PointNet for
//! point clouds and point tracks, and pre-LayerNorm transformer encoder blocks.
//!
//! Every encoder is a [`Module`] built from a [`VarBuilder`] with named prefixes, has a
//! serde config (saved in checkpoints as TOML), and maps a batch to `B × output`
//! features (the transformer keeps the token axis: `B × T × D`). Normalisation and
//! softmax have backward passes: LayerNorm is [`crate::fused::layer_norm`], softmax
//! candle's `ops::softmax` (candle's fused kernels for both have none).
//! Finite-difference tests cover every parameter.
//!
//! ```
//! use candle_core::{Device, Module, Tensor};
//! use dex_policy::encoders::{PointNet, PointNetConfig};
//! use dex_policy::nets::{init_seeded, new_store};
//!
//! let (varmap, vb) = new_store();
//! let config = PointNetConfig { input: 3, hidden: vec![32, 64], output: 16, ..Default::default() };
//! let net = PointNet::new(&config, &vb.pp("points"))?;
//! init_seeded(&varmap, 0, |_| 1.0)?;
//! let cloud = Tensor::zeros((4, 128, 3), candle_core::DType::F32, &Device::Cpu)?; // B × N × 3
//! assert_eq!(net.forward(&cloud)?.dims(), &[4, 16]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use candle_core::{D, Module, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, Linear, VarBuilder};
use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid_setting};
use crate::fused;
use crate::nets::Activation;

/// A LayerNorm over the last axis with a backward ([`crate::fused::layer_norm`]).
#[derive(Debug, Clone)]
pub(crate) struct LayerNorm {
    gamma: Tensor,
    beta: Tensor,
}

impl LayerNorm {
    pub(crate) fn new(width: usize, vb: &VarBuilder<'_>) -> Result<Self> {
        Ok(Self {
            gamma: vb.get_with_hints(width, "weight", candle_nn::Init::Const(1.0))?,
            beta: vb.get_with_hints(width, "bias", candle_nn::Init::Const(0.0))?,
        })
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        fused::layer_norm(x, &self.gamma, &self.beta, 1e-5)
    }
}

/// Shape of a [`CnnEncoder`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CnnConfig {
    /// Input channels (1 for depth).
    pub in_channels: usize,
    /// Input height (pixels).
    pub height: usize,
    /// Input width (pixels).
    pub width: usize,
    /// Output channels of each convolution.
    pub channels: Vec<usize>,
    /// Kernel size of each convolution (square).
    pub kernels: Vec<usize>,
    /// Stride of each convolution.
    pub strides: Vec<usize>,
    /// Width of the feature vector after the final linear layer.
    pub output: usize,
    /// Activation after every convolution and after the final layer.
    pub activation: Activation,
    /// LayerNorm on the output features (before the activation).
    pub layer_norm: bool,
}

impl Default for CnnConfig {
    /// Three convolutions for a 16 × 16 squinted depth image (Squint renders 128² and
    /// area-downsamples to 16²): 16 → 7 → 5 → 3.
    fn default() -> Self {
        Self {
            in_channels: 1,
            height: 16,
            width: 16,
            channels: vec![32, 32, 32],
            kernels: vec![4, 3, 3],
            strides: vec![2, 1, 1],
            output: 64,
            activation: Activation::Relu,
            layer_norm: true,
        }
    }
}

impl CnnConfig {
    /// Spatial size after every convolution (no padding), or an error when the image
    /// is too small for the kernels.
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidSetting`] for mismatched list lengths, zero sizes, an
    /// image smaller than a kernel, or a stride that leaves pixels over.
    pub fn feature_map(&self) -> Result<(usize, usize, usize)> {
        let n = self.channels.len();
        if n == 0 || self.kernels.len() != n || self.strides.len() != n {
            return Err(invalid_setting(
                "CNN config",
                "CNN: channels, kernels and strides need one entry per convolution",
            ));
        }
        if self.in_channels == 0
            || self.output == 0
            || self.channels.contains(&0)
            || self.kernels.contains(&0)
            || self.strides.contains(&0)
        {
            return Err(invalid_setting(
                "CNN config",
                format!("CNN sizes must be positive: {self:?}"),
            ));
        }
        let (mut h, mut w) = (self.height, self.width);
        for (k, s) in self.kernels.iter().zip(&self.strides) {
            if h < *k || w < *k {
                return Err(invalid_setting(
                    "CNN config",
                    format!(
                        "CNN: a {h}×{w} feature map is smaller than a {k}×{k} kernel \
                     (input {}×{})",
                        self.height, self.width
                    ),
                ));
            }
            // candle 0.11's conv2d backward mis-sizes the input gradient when the stride
            // leaves pixels over (its transposed convolution has no output padding):
            // such shapes would train with a shape error, so they are refused here.
            if !(h - k).is_multiple_of(*s) || !(w - k).is_multiple_of(*s) {
                return Err(invalid_setting(
                    "CNN config",
                    format!(
                        "CNN: a {h}×{w} feature map with kernel {k} and stride {s} leaves \
                     pixels over; choose sizes with (size − kernel) divisible by the stride"
                    ),
                ));
            }
            h = (h - k) / s + 1;
            w = (w - k) / s + 1;
        }
        Ok((*self.channels.last().unwrap_or(&1), h, w))
    }
}

/// A convolutional encoder for images: `B × C × H × W` (or `B × H × W` for one channel)
/// → `B × output`. Convolutions without padding, then flatten, linear, optional
/// LayerNorm, activation.
pub struct CnnEncoder {
    config: CnnConfig,
    convs: Vec<Conv2d>,
    head: Linear,
    norm: Option<LayerNorm>,
}

impl std::fmt::Debug for CnnEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CnnEncoder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl CnnEncoder {
    /// Builds the layers under `vb` (`c0`, `c1`, …, `head`, `norm`).
    ///
    /// # Errors
    ///
    /// A bad config or a tensor error.
    pub fn new(config: &CnnConfig, vb: &VarBuilder<'_>) -> Result<Self> {
        let (c, h, w) = config.feature_map()?;
        let mut convs = Vec::with_capacity(config.channels.len());
        let mut in_c = config.in_channels;
        for (i, ((&out_c, &k), &s)) in config
            .channels
            .iter()
            .zip(&config.kernels)
            .zip(&config.strides)
            .enumerate()
        {
            let cfg = Conv2dConfig {
                stride: s,
                ..Conv2dConfig::default()
            };
            convs.push(candle_nn::conv2d(
                in_c,
                out_c,
                k,
                cfg,
                vb.pp(format!("c{i}")),
            )?);
            in_c = out_c;
        }
        let head = candle_nn::linear(c * h * w, config.output, vb.pp("head"))?;
        let norm = if config.layer_norm {
            Some(LayerNorm::new(config.output, &vb.pp("norm"))?)
        } else {
            None
        };
        Ok(Self {
            config: config.clone(),
            convs,
            head,
            norm,
        })
    }

    /// The config.
    pub fn config(&self) -> &CnnConfig {
        &self.config
    }
}

impl Module for CnnEncoder {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let h = match x.rank() {
            3 => x.unsqueeze(1)?,
            _ => x.clone(),
        };
        let act = Some(self.config.activation);
        // Channels last through the convolutions (see `fused::conv2d_nhwc`), then back
        // to channels first, so the head sees the features in `C × H × W` order.
        let mut h = h.permute((0, 2, 3, 1))?;
        for conv in &self.convs {
            h = fused::conv2d_nhwc(&h, conv, act)?;
        }
        let flat = h.permute((0, 3, 1, 2))?.flatten_from(1)?;
        let norm = self.norm.as_ref().map(|n| (&n.gamma, &n.beta));
        fused::hidden_layer(&flat, &self.head, norm, act)
    }
}

/// Shape of a [`PointNet`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PointNetConfig {
    /// Values per point (3 for positions; 3 + extra for tracks with features).
    pub input: usize,
    /// Widths of the shared per-point MLP (each followed by the activation).
    pub hidden: Vec<usize>,
    /// Width of the output after the max-pool and a final linear layer.
    pub output: usize,
    /// Activation of the per-point layers.
    pub activation: Activation,
    /// LayerNorm after every per-point linear layer.
    pub layer_norm: bool,
}

impl Default for PointNetConfig {
    fn default() -> Self {
        Self {
            input: 3,
            hidden: vec![64, 128, 256],
            output: 256,
            activation: Activation::Relu,
            layer_norm: false,
        }
    }
}

/// PointNet (Qi et al. 2017) without the input transforms: a per-point MLP shared by
/// every point, a max-pool over points, and a linear layer: `B × N × input` →
/// `B × output`. Order of points does not matter.
pub struct PointNet {
    config: PointNetConfig,
    layers: Vec<(Linear, Option<LayerNorm>)>,
    head: Linear,
}

impl std::fmt::Debug for PointNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PointNet")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl PointNet {
    /// Builds the layers under `vb` (`p0`, `p1`, …, `n0`, … for norms, `head`).
    ///
    /// # Errors
    ///
    /// A bad config or a tensor error.
    pub fn new(config: &PointNetConfig, vb: &VarBuilder<'_>) -> Result<Self> {
        if config.input == 0 || config.output == 0 || config.hidden.is_empty() {
            return Err(invalid_setting(
                "PointNet config",
                format!(
                    "PointNet needs positive widths and at least one per-point layer: {config:?}"
                ),
            ));
        }
        if config.hidden.contains(&0) {
            return Err(invalid_setting(
                "PointNet config",
                "PointNet hidden widths must be positive",
            ));
        }
        let mut layers = Vec::with_capacity(config.hidden.len());
        let mut width = config.input;
        for (i, &h) in config.hidden.iter().enumerate() {
            let lin = candle_nn::linear(width, h, vb.pp(format!("p{i}")))?;
            let norm = if config.layer_norm {
                Some(LayerNorm::new(h, &vb.pp(format!("n{i}")))?)
            } else {
                None
            };
            layers.push((lin, norm));
            width = h;
        }
        let head = candle_nn::linear(width, config.output, vb.pp("head"))?;
        Ok(Self {
            config: config.clone(),
            layers,
            head,
        })
    }

    /// The config.
    pub fn config(&self) -> &PointNetConfig {
        &self.config
    }

    /// Per-point features before pooling: `B × N × hidden.last()`.
    fn point_features(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, n, d) = x.dims3()?;
        let mut h = x.reshape((b * n, d))?;
        let act = Some(self.config.activation);
        for (lin, norm) in &self.layers {
            let norm = norm.as_ref().map(|n| (&n.gamma, &n.beta));
            h = fused::hidden_layer(&h, lin, norm, act)?;
        }
        let w = h.dim(1)?;
        h.reshape((b, n, w))
    }

    /// Like `forward`, ignoring points whose `mask` (`B × N`, 1 = visible, 0 = hidden)
    /// is 0. A row with no visible point pools to zeros.
    ///
    /// # Errors
    ///
    /// Shape errors.
    pub fn forward_masked(&self, x: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let h = self.point_features(x)?;
        let m = mask.to_dtype(h.dtype())?.unsqueeze(D::Minus1)?;
        // Hidden points are pushed far below every visible one before the max; rows
        // without any visible point are multiplied back to zero afterwards.
        let penalty = ((m.ones_like()? - &m)? * 1e9)?;
        let pooled = h.broadcast_sub(&penalty)?.max(1)?;
        let any = m.max(1)?;
        fused::linear(&pooled.broadcast_mul(&any)?, &self.head)
    }
}

impl Module for PointNet {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        fused::linear(&self.point_features(x)?.max(1)?, &self.head)
    }
}

/// Shape of a [`TransformerEncoder`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransformerConfig {
    /// Token width `D`.
    pub width: usize,
    /// Attention heads (must divide `width`).
    pub heads: usize,
    /// Hidden width of each block's feed-forward layer.
    pub feed_forward: usize,
    /// Blocks.
    pub layers: usize,
}

impl Default for TransformerConfig {
    fn default() -> Self {
        Self {
            width: 128,
            heads: 4,
            feed_forward: 256,
            layers: 2,
        }
    }
}

/// One pre-LayerNorm transformer encoder block: `x + MHA(LN(x))`, then
/// `x + FF(LN(x))` with a GELU feed-forward layer.
struct EncoderBlock {
    heads: usize,
    n1: LayerNorm,
    qkv: Linear,
    proj: Linear,
    n2: LayerNorm,
    ff1: Linear,
    ff2: Linear,
}

impl EncoderBlock {
    fn new(c: &TransformerConfig, vb: &VarBuilder<'_>) -> Result<Self> {
        Ok(Self {
            heads: c.heads,
            n1: LayerNorm::new(c.width, &vb.pp("n1"))?,
            qkv: candle_nn::linear(c.width, 3 * c.width, vb.pp("qkv"))?,
            proj: candle_nn::linear(c.width, c.width, vb.pp("proj"))?,
            n2: LayerNorm::new(c.width, &vb.pp("n2"))?,
            ff1: candle_nn::linear(c.width, c.feed_forward, vb.pp("ff1"))?,
            ff2: candle_nn::linear(c.feed_forward, c.width, vb.pp("ff2"))?,
        })
    }

    /// `x`: `B × T × D`; `key_mask`: optional `B × T` (1 = attend, 0 = ignore).
    fn forward(&self, x: &Tensor, key_mask: Option<&Tensor>) -> candle_core::Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        let dh = d / self.heads;
        let qkv = fused::linear(&self.n1.forward(x)?, &self.qkv)?
            .reshape((b, t, 3, self.heads, dh))?
            .permute((2, 0, 3, 1, 4))?; // 3 × B × H × T × dh
        let q = qkv.get(0)?.contiguous()?;
        let k = qkv.get(1)?.contiguous()?;
        let v = qkv.get(2)?.contiguous()?;
        let mut scores = (q.matmul(&k.t()?.contiguous()?)? / (dh as f64).sqrt())?; // B×H×T×T
        if let Some(m) = key_mask {
            let m = m.to_dtype(scores.dtype())?.reshape((b, 1, 1, t))?;
            let penalty = ((m.ones_like()? - &m)? * 1e9)?;
            scores = scores.broadcast_sub(&penalty)?;
        }
        let attn = candle_nn::ops::softmax(&scores, D::Minus1)?;
        let mixed = attn
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b, t, d))?;
        let x = (x + fused::linear(&mixed, &self.proj)?)?;
        let hidden = fused::gelu(&fused::linear(&self.n2.forward(&x)?, &self.ff1)?)?;
        let ff = fused::linear(&hidden, &self.ff2)?;
        x + ff
    }
}

/// A stack of pre-LayerNorm transformer encoder blocks with a final LayerNorm:
/// `B × T × D` → `B × T × D`. No positional encoding is added: tokens that need an
/// order (time steps) carry it in their features; sets (points, tracks) need none.
pub struct TransformerEncoder {
    config: TransformerConfig,
    blocks: Vec<EncoderBlock>,
    norm: LayerNorm,
}

impl std::fmt::Debug for TransformerEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransformerEncoder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl TransformerEncoder {
    /// Builds the blocks under `vb` (`b0`, `b1`, …, `norm`).
    ///
    /// # Errors
    ///
    /// A bad config (zero sizes, heads not dividing the width) or a tensor error.
    pub fn new(config: &TransformerConfig, vb: &VarBuilder<'_>) -> Result<Self> {
        if config.width == 0 || config.heads == 0 || config.feed_forward == 0 {
            return Err(invalid_setting(
                "transformer config",
                format!("transformer sizes must be positive: {config:?}"),
            ));
        }
        if !config.width.is_multiple_of(config.heads) {
            return Err(invalid_setting(
                "transformer config",
                format!(
                    "transformer: {} heads do not divide the width {}",
                    config.heads, config.width
                ),
            ));
        }
        let blocks = (0..config.layers)
            .map(|i| EncoderBlock::new(config, &vb.pp(format!("b{i}"))))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            config: config.clone(),
            blocks,
            norm: LayerNorm::new(config.width, &vb.pp("norm"))?,
        })
    }

    /// The config.
    pub fn config(&self) -> &TransformerConfig {
        &self.config
    }

    /// Runs the blocks; tokens whose `key_mask` entry (`B × T`) is 0 are not attended
    /// to (their own outputs are still computed).
    ///
    /// # Errors
    ///
    /// Shape errors (the token width must be `config.width`).
    pub fn forward_masked(
        &self,
        x: &Tensor,
        key_mask: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let mut h = x.clone();
        for block in &self.blocks {
            h = block.forward(&h, key_mask)?;
        }
        self.norm.forward(&h)
    }
}

impl Module for TransformerEncoder {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.forward_masked(x, None)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    use super::*;
    use crate::gradients::testing::check_gradients;
    use crate::nets::init_seeded;

    fn store() -> (VarMap, VarBuilder<'static>) {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F64, &Device::Cpu);
        (varmap, vb)
    }

    fn input(dims: &[usize], seed: u64) -> Tensor {
        let n: usize = dims.iter().product();
        let v: Vec<f64> = (0..n)
            .map(|i| ((i as f64 * 0.7 + seed as f64) * 1.3).sin())
            .collect();
        Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
    }

    /// A loss that mixes every output with distinct weights.
    fn weighted_sum(y: &Tensor) -> Tensor {
        let w = input(y.dims(), 9);
        (y * w).unwrap().sum_all().unwrap()
    }

    #[test]
    fn cnn_gradients_match_finite_differences() {
        let (varmap, vb) = store();
        let config = CnnConfig {
            height: 7,
            width: 9,
            channels: vec![2, 3],
            kernels: vec![3, 2],
            strides: vec![2, 1],
            output: 4,
            activation: Activation::Elu,
            layer_norm: true,
            ..CnnConfig::default()
        };
        let net = CnnEncoder::new(&config, &vb).unwrap();
        init_seeded(&varmap, 1, |_| 1.0).unwrap();
        let x = input(&[2, 7, 9], 1);
        assert_eq!(net.forward(&x).unwrap().dims(), &[2, 4]);
        check_gradients(&varmap, &[""], &|| weighted_sum(&net.forward(&x).unwrap()));
    }

    #[test]
    fn cnn_rejects_images_smaller_than_its_kernels() {
        let (_varmap, vb) = store();
        let config = CnnConfig {
            height: 4,
            width: 4,
            ..CnnConfig::default()
        };
        let err = CnnEncoder::new(&config, &vb).unwrap_err();
        assert!(err.to_string().contains("smaller than"), "{err}");
        let config = CnnConfig {
            height: 8,
            kernels: vec![3, 3, 3],
            ..CnnConfig::default()
        };
        let err = CnnEncoder::new(&config, &vb).unwrap_err();
        assert!(err.to_string().contains("pixels over"), "{err}");
        // The default fits a 16² squinted image.
        assert_eq!(CnnConfig::default().feature_map().unwrap(), (32, 3, 3));
    }

    #[test]
    fn pointnet_gradients_match_finite_differences_and_ignore_point_order() {
        let (varmap, vb) = store();
        let config = PointNetConfig {
            input: 3,
            hidden: vec![4, 5],
            output: 3,
            activation: Activation::Elu,
            layer_norm: true,
        };
        let net = PointNet::new(&config, &vb).unwrap();
        init_seeded(&varmap, 2, |_| 1.0).unwrap();
        let x = input(&[2, 6, 3], 2);
        check_gradients(&varmap, &[""], &|| weighted_sum(&net.forward(&x).unwrap()));
        // Reversing the points changes nothing.
        let idx = Tensor::new(&[5u32, 4, 3, 2, 1, 0], &Device::Cpu).unwrap();
        let y = net.forward(&x).unwrap();
        let y_rev = net.forward(&x.index_select(&idx, 1).unwrap()).unwrap();
        let d = (y - y_rev).unwrap().abs().unwrap().max_all().unwrap();
        assert!(d.to_scalar::<f64>().unwrap() < 1e-12);
    }

    #[test]
    fn masked_pointnet_ignores_hidden_points() {
        let (varmap, vb) = store();
        let config = PointNetConfig {
            input: 3,
            hidden: vec![8],
            output: 4,
            ..PointNetConfig::default()
        };
        let net = PointNet::new(&config, &vb).unwrap();
        init_seeded(&varmap, 3, |_| 1.0).unwrap();
        let x = input(&[1, 5, 3], 3);
        let mask = Tensor::new(&[[1.0f64, 1.0, 0.0, 1.0, 0.0]], &Device::Cpu).unwrap();
        let visible = Tensor::new(&[0u32, 1, 3], &Device::Cpu).unwrap();
        let a = net.forward_masked(&x, &mask).unwrap();
        let b = net.forward(&x.index_select(&visible, 1).unwrap()).unwrap();
        let d = (a - b).unwrap().abs().unwrap().max_all().unwrap();
        assert!(d.to_scalar::<f64>().unwrap() < 1e-12);
        // Gradients flow through the masked pool too.
        check_gradients(&varmap, &[""], &|| {
            weighted_sum(&net.forward_masked(&x, &mask).unwrap())
        });
    }

    #[test]
    fn transformer_gradients_match_finite_differences() {
        let (varmap, vb) = store();
        let config = TransformerConfig {
            width: 4,
            heads: 2,
            feed_forward: 6,
            layers: 2,
        };
        let net = TransformerEncoder::new(&config, &vb).unwrap();
        init_seeded(&varmap, 4, |_| 1.0).unwrap();
        let x = input(&[2, 3, 4], 4);
        assert_eq!(net.forward(&x).unwrap().dims(), &[2, 3, 4]);
        check_gradients(&varmap, &[""], &|| weighted_sum(&net.forward(&x).unwrap()));
    }

    #[test]
    fn masked_tokens_do_not_change_the_others() {
        let (varmap, vb) = store();
        let config = TransformerConfig {
            width: 4,
            heads: 2,
            feed_forward: 6,
            layers: 1,
        };
        let net = TransformerEncoder::new(&config, &vb).unwrap();
        init_seeded(&varmap, 5, |_| 1.0).unwrap();
        let x = input(&[1, 3, 4], 5);
        let mask = Tensor::new(&[[1.0f64, 0.0, 1.0]], &Device::Cpu).unwrap();
        let full = net.forward_masked(&x, Some(&mask)).unwrap();
        // Changing the masked token leaves the visible tokens' outputs as they were.
        let x2 = (x.clone()
            + Tensor::new(&[[[0.0f64; 4], [3.0; 4], [0.0; 4]]], &Device::Cpu).unwrap())
        .unwrap();
        let changed = net.forward_masked(&x2, Some(&mask)).unwrap();
        for t in [0usize, 2] {
            let d = (full.get(0).unwrap().get(t).unwrap()
                - changed.get(0).unwrap().get(t).unwrap())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
            assert!(d < 1e-12, "token {t} moved by {d}");
        }
    }

    #[test]
    fn transformer_rejects_heads_that_do_not_divide_the_width() {
        let (_varmap, vb) = store();
        let config = TransformerConfig {
            width: 6,
            heads: 4,
            ..TransformerConfig::default()
        };
        assert!(TransformerEncoder::new(&config, &vb).is_err());
    }
}
