//! Patch extraction for the convolution: [`Unfold`] (image → patch rows) and its
//! adjoint [`Fold`], as custom ops.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape};

use super::cpu::*;

/// Patches of a contiguous `[B, H, W, C]` image as rows `[B·OH·OW, k·k·C]`, each row
/// ordered (ky, kx, c).
#[derive(Debug, Clone, Copy)]
pub(super) struct Unfold {
    pub(super) kernel: usize,
    pub(super) stride: usize,
}

impl Unfold {
    /// `(b, h, w, c, oh, ow)` of an input layout.
    pub(super) fn sizes(&self, layout: &Layout) -> candle_core::Result<[usize; 6]> {
        let (b, h, w, c) = layout.shape().dims4()?;
        let (k, s) = (self.kernel, self.stride);
        if k == 0 || s == 0 || h < k || w < k {
            candle_core::bail!(
                "dex-unfold: image {:?}, kernel {k}, stride {s}",
                layout.dims()
            );
        }
        Ok([b, h, w, c, (h - k) / s + 1, (w - k) / s + 1])
    }
}

impl CustomOp1 for Unfold {
    fn name(&self) -> &'static str {
        "dex-unfold"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(self.name(), storage, layout)?;
        let [b, h, w, c, oh, ow] = self.sizes(layout)?;
        let (k, s) = (self.kernel, self.stride);
        let run = k * c;
        let patches = b * oh * ow;
        // Filled by appending, not zeroed first: the matrix is large (k² times the image).
        let mut cols = Vec::with_capacity(patches * k * run);
        for r in 0..patches {
            let top_left = patch_origin(r, [h, w, c, oh, ow], s);
            for ky in 0..k {
                let start = top_left + ky * w * c;
                cols.extend_from_slice(&x[start..start + run]);
            }
        }
        Ok((CpuStorage::F32(cols), Shape::from((patches, k * run))))
    }
}

/// Offset in a contiguous `[B, H, W, C]` image of the top-left value of patch `r`
/// (patches numbered batch, row, column) for `[h, w, c, oh, ow]` and stride `s`.
#[inline]
pub(super) fn patch_origin(r: usize, [h, w, c, oh, ow]: [usize; 5], s: usize) -> usize {
    let (bi, oy, ox) = (r / (oh * ow), (r / ow) % oh, r % ow);
    ((bi * h + oy * s) * w + ox * s) * c
}

/// [`Unfold`]'s adjoint: patch rows `[B·OH·OW, k·k·C]` added back into a
/// `[B, H, W, C]` image.
pub(super) struct Fold {
    pub(super) unfold: Unfold,
    pub(super) image: Shape,
}

impl CustomOp1 for Fold {
    fn name(&self) -> &'static str {
        "dex-fold"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let cols = f32_slice(self.name(), storage, layout)?;
        let image_layout = Layout::contiguous(self.image.clone());
        let [b, h, w, c, oh, ow] = self.unfold.sizes(&image_layout)?;
        let (k, s) = (self.unfold.kernel, self.unfold.stride);
        let run = k * c;
        if cols.len() != b * oh * ow * k * run {
            candle_core::bail!(
                "{}: {:?} patch gradients for an image {:?}",
                self.name(),
                layout.dims(),
                self.image.dims()
            );
        }
        let mut x = vec![0.0f32; b * h * w * c];
        for (r, row) in cols.chunks_exact(k * run).enumerate() {
            let top_left = patch_origin(r, [h, w, c, oh, ow], s);
            for (ky, src) in row.chunks_exact(run).enumerate() {
                let start = top_left + ky * w * c;
                for (d, &g) in x[start..start + run].iter_mut().zip(src) {
                    *d += g;
                }
            }
        }
        Ok((CpuStorage::F32(x), self.image.clone()))
    }
}
