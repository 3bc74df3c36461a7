//! [`conv2d_nhwc`]: a channels-last convolution as unfolded patches times the reordered weight, with its own backward.

use candle_core::{Module, Tensor};
use candle_nn::Conv2d;

use super::activation::*;
use super::cpu::*;
use super::ops::*;
use super::patches::*;

use super::linear_op::*;

/// A convolution of a channels-last batch `x: [B, H, W, C]` with a [`Conv2d`] layer
/// (weight `[O, C, k, k]`, bias `[O]`), then `activation`: `[B, OH, OW, O]`, where
/// `OH = (H − k) / stride + 1` and likewise `OW`.
///
/// One op with its own backward: it unfolds every `k × k` patch into a row ("im2col":
/// a `[B·OH·OW, k·k·C]` matrix, each patch row `k` runs of `k·C` contiguous input
/// values) and multiplies it with the weight reordered to `[O, k·k·C]`, adding the
/// bias and applying the activation in place, as [`linear_activation`] does. The
/// backward unfolds again for the weight gradient and computes the input gradient (a
/// fold that adds every patch's gradient back, "col2im") only when the input needs
/// one; the unfolded matrix, `k²` times the image, never enters candle's graph.
/// Channels-last keeps the output of one layer the input of the next without
/// transposes. candle 0.11's own CPU convolution and its backward (direct loops and a
/// transposed convolution) took most of a SAC update on 16 × 16 depth images.
///
/// Layers with padding, dilation, groups or no bias, and tensors other than CPU `f32`,
/// go through [`Conv2d::forward`] (transposed to channels-first and back).
///
/// # Errors
///
/// An input of rank other than 4, channels that do not match the weight, an image
/// smaller than the kernel or a stride that leaves pixels over, or a tensor error from
/// candle.
pub fn conv2d_nhwc(
    x: &Tensor,
    conv: &Conv2d,
    activation: Option<Activation>,
) -> candle_core::Result<Tensor> {
    let weight = conv.weight();
    let (outputs, channels, k, k2) = weight.dims4()?;
    let (b, h, w, c) = x.dims4()?;
    if c != channels || k != k2 {
        candle_core::bail!(
            "conv2d: input {:?} (channels last) for a weight {:?}",
            x.dims(),
            weight.dims()
        );
    }
    let cfg = conv.config();
    if cfg.stride == 0 {
        candle_core::bail!("conv2d: stride 0");
    }
    let simple = cfg.padding == 0 && cfg.dilation == 1 && cfg.groups == 1;
    let bias = conv
        .bias()
        .filter(|bias| simple && is_cpu_f32(x) && is_cpu_f32(weight) && is_cpu_f32(bias));
    let Some(bias) = bias else {
        let y = conv.forward(&x.permute((0, 3, 1, 2))?)?;
        return then_activate(y.permute((0, 2, 3, 1))?, activation);
    };
    let s = cfg.stride;
    if h < k || w < k || !(h - k).is_multiple_of(s) || !(w - k).is_multiple_of(s) {
        candle_core::bail!(
            "conv2d: a {h}×{w} image with kernel {k} and stride {s} (needs size ≥ kernel \
             and (size − kernel) divisible by the stride)"
        );
    }
    let (oh, ow) = ((h - k) / s + 1, (w - k) / s + 1);
    // The weight as rows of (ky, kx, c), the order of the unfolded patches.
    let w2 = weight
        .permute((0, 2, 3, 1))?
        .contiguous()?
        .reshape((outputs, k * k * c))?;
    let (act, after) = split_activation(activation);
    let unfold = Unfold {
        kernel: k,
        stride: s,
    };
    let y = x.contiguous()?.apply_op3(
        &w2,
        &bias.contiguous()?,
        LinearOp {
            act,
            patches: Some(unfold),
        },
    )?;
    then_activate(y.reshape((b, oh, ow, outputs))?, after)
}
