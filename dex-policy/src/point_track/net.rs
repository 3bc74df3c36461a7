//! The Dex4D student network: point encoders, the token trunk and the heads.

use std::ops::Range;

use candle_core::{D, Module, Tensor};
use candle_nn::{Linear, VarBuilder};
use serde::{Deserialize, Serialize};

use crate::encoders::{LayerNorm, TransformerConfig, TransformerEncoder};
use crate::error::{Result, invalid_setting};
use crate::fused::{self, Activation};

/// How the student encodes the paired current and goal points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PointEncoding {
    /// Dex4D's paired point encoding: each point's current and goal positions (with
    /// both sets' means) go through one shared MLP, then mean-max mixed pooling.
    #[default]
    Paired,
    /// Ablation: two PointNets, one for the current and one for the goal points,
    /// their pooled features concatenated (correspondence is lost).
    Decoupled,
    /// Ablation: the flattened points through an MLP.
    Mlp,
}

impl std::str::FromStr for PointEncoding {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "paired" => Ok(Self::Paired),
            "decoupled" => Ok(Self::Decoupled),
            "mlp" => Ok(Self::Mlp),
            other => Err(invalid_setting(
                "student.encoder",
                format!("unknown point encoding {other:?} (paired, decoupled, mlp)"),
            )),
        }
    }
}

/// Shape of the student ([`PointTrackNet`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PointTrackConfig {
    /// The point encoding.
    pub encoder: PointEncoding,
    /// Token width (Dex4D: 128).
    pub width: usize,
    /// Width `p` of the shared per-point MLP (`in → p → 2p`, pooled to `2p`; Dex4D:
    /// 128). The per-point layers dominate the cost of a training step.
    pub point_width: usize,
    /// Transformer blocks (Dex4D: 4).
    pub layers: usize,
    /// Attention heads (Dex4D: 4).
    pub heads: usize,
    /// Feed-forward width of each block (Dex4D: 512).
    pub feed_forward: usize,
    /// Self-attention over the tokens; off (ablation): the concatenated tokens go
    /// through residual MLP blocks instead.
    pub attention: bool,
    /// Train the world-model heads (next joint positions and velocities from their
    /// tokens); off (ablation): the behaviour-cloning loss alone.
    pub world_model: bool,
    /// The point encoders average and pool over the visible points only (ours); off:
    /// every slot enters the means and the pools, a hidden one as its zeros, as in
    /// Dex4D's released code.
    pub visible_only: bool,
}

impl Default for PointTrackConfig {
    /// The CPU preset: width 64, point MLP 32, 2 blocks, 4 heads, feed-forward 128
    /// (after the Dex4D fact sheet's §12 proposal); [`PointTrackConfig::paper`] has
    /// Dex4D's sizes.
    fn default() -> Self {
        Self {
            encoder: PointEncoding::Paired,
            width: 64,
            point_width: 32,
            layers: 2,
            heads: 4,
            feed_forward: 128,
            attention: true,
            world_model: true,
            visible_only: true,
        }
    }
}

impl PointTrackConfig {
    /// Dex4D's sizes (code `algorithms/rl/dagger/module.py`): width 128, point MLP
    /// 128 (12 → 128 → 256), 4 blocks, 4 heads, feed-forward 512.
    pub fn paper() -> Self {
        Self {
            width: 128,
            point_width: 128,
            layers: 4,
            heads: 4,
            feed_forward: 512,
            ..Self::default()
        }
    }

    /// Checks the sizes.
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidSetting`] naming the bad field.
    pub fn validate(&self) -> Result<()> {
        if self.width == 0
            || self.point_width == 0
            || self.heads == 0
            || self.feed_forward == 0
            || self.layers == 0
        {
            return Err(invalid_setting(
                "student",
                format!("sizes must be positive: {self:?}"),
            ));
        }
        if self.attention && !self.width.is_multiple_of(self.heads) {
            return Err(invalid_setting(
                "student.heads",
                format!(
                    "{} heads do not divide the width {}",
                    self.heads, self.width
                ),
            ));
        }
        Ok(())
    }
}

/// Where the student's inputs sit in the environment's observation (`state` indices).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointTrackInputs {
    /// Joint positions (the world model's first target).
    pub qpos: Range<usize>,
    /// Joint velocities (its second target).
    pub qvel: Range<usize>,
    /// The last action.
    pub last_action: Range<usize>,
    /// Current points, `3 × N` (zeros for a hidden point).
    pub current: Range<usize>,
    /// Goal points, `3 × N`, paired with the current ones by index.
    pub goal: Range<usize>,
}

impl PointTrackInputs {
    /// Checks the ranges against an observation of width `observation_dim`.
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidSetting`] for an empty or out-of-bounds range, or point
    /// blocks of different or non-multiple-of-3 lengths.
    pub fn validate(&self, observation_dim: usize) -> Result<()> {
        for (what, r) in [
            ("qpos", &self.qpos),
            ("qvel", &self.qvel),
            ("last_action", &self.last_action),
            ("current", &self.current),
            ("goal", &self.goal),
        ] {
            if r.is_empty() || r.end > observation_dim {
                return Err(invalid_setting(
                    "student inputs",
                    format!(
                        "{what} range {r:?} is empty or outside an observation of width {observation_dim}"
                    ),
                ));
            }
        }
        if self.current.len() != self.goal.len() || !self.current.len().is_multiple_of(3) {
            return Err(invalid_setting(
                "student inputs",
                format!(
                    "current ({}) and goal ({}) point blocks must be equal multiples of 3",
                    self.current.len(),
                    self.goal.len()
                ),
            ));
        }
        Ok(())
    }

    /// The inputs of dex-sim's [`dex_sim::PoseProxy`] observation.
    pub fn proxy(layout: &dex_sim::ProxyLayout) -> Self {
        Self {
            qpos: layout.qpos.clone(),
            qvel: layout.qvel.clone(),
            last_action: layout.last_action.clone(),
            current: layout.current.clone(),
            goal: layout.goal.clone(),
        }
    }

    /// The inputs of dex-sim's [`dex_sim::AnyposeTabletop`] observation (Dex4D's
    /// student inputs: 22 joint positions and velocities, the last action, the masked
    /// paired points).
    pub fn anypose_table(layout: &dex_sim::AnyposeTableLayout) -> Self {
        Self {
            qpos: layout.joints.clone(),
            qvel: layout.joint_velocities.clone(),
            last_action: layout.last_action.clone(),
            current: layout.current.clone(),
            goal: layout.goal.clone(),
        }
    }

    /// Points per set.
    pub fn points(&self) -> usize {
        self.current.len() / 3
    }
}

/// The student's inputs for a batch, as tensors.
#[derive(Debug, Clone)]
pub struct PointTrackBatch {
    /// `B × J`.
    pub qpos: Tensor,
    /// `B × J`.
    pub qvel: Tensor,
    /// `B × A`.
    pub last_action: Tensor,
    /// `B × N × 3`.
    pub current: Tensor,
    /// `B × N × 3`.
    pub goal: Tensor,
    /// `B × N`: 1 where the point is visible (not zero in both sets).
    pub visible: Tensor,
}

/// What the network predicts.
#[derive(Debug, Clone)]
pub struct PointTrackOutput {
    /// `B × A` actions.
    pub action: Tensor,
    /// `B × J` next joint positions.
    pub next_qpos: Tensor,
    /// `B × J` next joint velocities.
    pub next_qvel: Tensor,
}

/// Masked mean over points: `h` `B × N × C`, `m` `B × N × 1` → `B × C`.
fn masked_mean(h: &Tensor, m: &Tensor, count: &Tensor) -> candle_core::Result<Tensor> {
    h.broadcast_mul(m)?.sum(1)?.broadcast_div(count)
}

/// A shared per-point MLP (`in → w → 2w`, ReLU) with mean-max mixed pooling over the
/// visible points (max over the first `w` channels, mean over the last `w`; Dex4D's
/// student encoder): `B × N × in` → `B × 2w`.
struct MixedPool {
    l1: Linear,
    l2: Linear,
    width: usize,
}

impl MixedPool {
    fn new(input: usize, width: usize, vb: &VarBuilder<'_>) -> Result<Self> {
        Ok(Self {
            l1: candle_nn::linear(input, width, vb.pp("p0"))?,
            l2: candle_nn::linear(width, 2 * width, vb.pp("p1"))?,
            width,
        })
    }

    fn forward(&self, x: &Tensor, m: &Tensor, count: &Tensor) -> candle_core::Result<Tensor> {
        let (b, n, d) = x.dims3()?;
        let act = Some(Activation::Relu);
        let h = fused::linear_activation(&x.reshape((b * n, d))?, &self.l1, act)?;
        let h = fused::linear_activation(&h, &self.l2, act)?.reshape((b, n, 2 * self.width))?;
        let w = self.width;
        let penalty = ((m.ones_like()? - m)? * 1e9)?;
        let any = m.max(1)?;
        let maxed = h
            .narrow(2, 0, w)?
            .broadcast_sub(&penalty)?
            .max(1)?
            .broadcast_mul(&any)?;
        let meaned = masked_mean(&h.narrow(2, w, w)?, m, count)?;
        Tensor::cat(&[&maxed, &meaned], 1)
    }
}

/// The point-set token.
enum PointEncoder {
    Paired {
        pool: MixedPool,
        head: (Linear, Linear),
    },
    Decoupled {
        current: MixedPool,
        goal: MixedPool,
        head: (Linear, Linear),
    },
    Mlp {
        l1: Linear,
        l2: Linear,
        head: Linear,
    },
}

impl PointEncoder {
    fn new(c: &PointTrackConfig, points: usize, vb: &VarBuilder<'_>) -> Result<Self> {
        let (w, p) = (c.width, c.point_width);
        let head = |input: usize| -> Result<(Linear, Linear)> {
            Ok((
                candle_nn::linear(input, 2 * p, vb.pp("h0"))?,
                candle_nn::linear(2 * p, w, vb.pp("h1"))?,
            ))
        };
        Ok(match c.encoder {
            PointEncoding::Paired => Self::Paired {
                pool: MixedPool::new(12, p, &vb.pp("pair"))?,
                head: head(2 * p)?,
            },
            PointEncoding::Decoupled => Self::Decoupled {
                current: MixedPool::new(6, p, &vb.pp("cur"))?,
                goal: MixedPool::new(6, p, &vb.pp("goal"))?,
                head: head(4 * p)?,
            },
            PointEncoding::Mlp => Self::Mlp {
                l1: candle_nn::linear(6 * points, 2 * p, vb.pp("m0"))?,
                l2: candle_nn::linear(2 * p, 2 * p, vb.pp("m1"))?,
                head: candle_nn::linear(2 * p, w, vb.pp("h1"))?,
            },
        })
    }

    fn forward(&self, x: &PointTrackBatch, visible_only: bool) -> candle_core::Result<Tensor> {
        let m = if visible_only {
            x.visible.unsqueeze(D::Minus1)?
        } else {
            x.visible.ones_like()?.unsqueeze(D::Minus1)?
        };
        let count = m.sum(1)?.clamp(1.0, f64::INFINITY)?;
        // Each set centred on the mean of its visible points, the mean kept beside.
        let centred = |p: &Tensor| -> candle_core::Result<Tensor> {
            let mean = masked_mean(p, &m, &count)?.unsqueeze(1)?;
            let mean = mean.broadcast_as(p.shape())?;
            Tensor::cat(&[&mean, &(p - &mean)?], 2)
        };
        let relu = Some(Activation::Relu);
        let mlp_head = |h: &Tensor, head: &(Linear, Linear)| -> candle_core::Result<Tensor> {
            fused::linear(&fused::linear_activation(h, &head.0, relu)?, &head.1)
        };
        match self {
            Self::Paired { pool, head } => {
                let q = Tensor::cat(&[&centred(&x.current)?, &centred(&x.goal)?], 2)?;
                mlp_head(&pool.forward(&q, &m, &count)?, head)
            }
            Self::Decoupled {
                current,
                goal,
                head,
            } => {
                let c = current.forward(&centred(&x.current)?, &m, &count)?;
                let g = goal.forward(&centred(&x.goal)?, &m, &count)?;
                mlp_head(&Tensor::cat(&[&c, &g], 1)?, head)
            }
            Self::Mlp { l1, l2, head } => {
                let flat = Tensor::cat(&[&x.current, &x.goal], 2)?.flatten_from(1)?;
                let h = fused::linear_activation(&flat, l1, relu)?;
                let h = fused::linear_activation(&h, l2, relu)?;
                fused::linear(&h, head)
            }
        }
    }
}

/// The token trunk: a transformer over the four tokens, or (ablation) residual MLP
/// blocks over their concatenation.
enum Trunk {
    Attention(TransformerEncoder),
    Mlp {
        blocks: Vec<(LayerNorm, Linear, Linear)>,
        norm: LayerNorm,
    },
}

/// Dex4D's student, the "action world model" (arXiv 2602.15828 §III-C2; code
/// `algorithms/rl/dagger/module.py`): four tokens of width `w` — joint positions,
/// joint velocities, the last action (each through a linear layer) and the point-set
/// token of the point encoder — through a transformer without positional encoding;
/// the action is read from the last-action token, the next joint positions and
/// velocities (the world model) from their own tokens. Heads start at 0.01 of the
/// usual scale, as Dex4D's.
///
/// Differences from Dex4D's code, chosen here: the point encoder has no BatchNorm (a
/// batch statistic would make acting depend on the batch) and by default centres each
/// set on the mean of its *visible* points and pools over them only (Dex4D's means and
/// pools include the zeros of hidden points: [`PointTrackConfig::visible_only`] off);
/// the blocks are standard pre-LayerNorm ones with a final LayerNorm (Dex4D carries
/// the LayerNorm output in its residual stream) and no dropout.
pub struct PointTrackNet {
    config: PointTrackConfig,
    qpos: Linear,
    qvel: Linear,
    last_action: Linear,
    points: PointEncoder,
    trunk: Trunk,
    action_head: Linear,
    qpos_head: Linear,
    qvel_head: Linear,
}

impl std::fmt::Debug for PointTrackNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PointTrackNet")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Names of the variables that start at 0.01 of the usual scale (the heads).
pub(crate) fn is_head(name: &str) -> bool {
    name.contains("head.")
}

impl PointTrackNet {
    /// Builds the layers under `vb` for `joints` joint values, `actions` action values
    /// and `points` point pairs.
    ///
    /// # Errors
    ///
    /// A bad config or a tensor error.
    pub fn new(
        config: &PointTrackConfig,
        joints: usize,
        actions: usize,
        points: usize,
        vb: &VarBuilder<'_>,
    ) -> Result<Self> {
        config.validate()?;
        let w = config.width;
        let trunk = if config.attention {
            Trunk::Attention(TransformerEncoder::new(
                &TransformerConfig {
                    width: w,
                    heads: config.heads,
                    feed_forward: config.feed_forward,
                    layers: config.layers,
                },
                &vb.pp("trunk"),
            )?)
        } else {
            let vt = vb.pp("trunk");
            let blocks = (0..config.layers)
                .map(|i| {
                    let b = vt.pp(format!("b{i}"));
                    Ok((
                        LayerNorm::new(4 * w, &b.pp("n"))?,
                        candle_nn::linear(4 * w, 4 * config.feed_forward, b.pp("ff1"))?,
                        candle_nn::linear(4 * config.feed_forward, 4 * w, b.pp("ff2"))?,
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            Trunk::Mlp {
                blocks,
                norm: LayerNorm::new(4 * w, &vt.pp("norm"))?,
            }
        };
        Ok(Self {
            config: config.clone(),
            qpos: candle_nn::linear(joints, w, vb.pp("tok_qpos"))?,
            qvel: candle_nn::linear(joints, w, vb.pp("tok_qvel"))?,
            last_action: candle_nn::linear(actions, w, vb.pp("tok_action"))?,
            points: PointEncoder::new(config, points, &vb.pp("points"))?,
            trunk,
            action_head: candle_nn::linear(w, actions, vb.pp("action_head"))?,
            qpos_head: candle_nn::linear(w, joints, vb.pp("qpos_head"))?,
            qvel_head: candle_nn::linear(w, joints, vb.pp("qvel_head"))?,
        })
    }

    /// The config.
    pub fn config(&self) -> &PointTrackConfig {
        &self.config
    }

    /// Actions and world-model predictions for a batch.
    ///
    /// # Errors
    ///
    /// Shape errors.
    pub fn forward(&self, x: &PointTrackBatch) -> candle_core::Result<PointTrackOutput> {
        let tokens = Tensor::stack(
            &[
                fused::linear(&x.qpos, &self.qpos)?,
                fused::linear(&x.qvel, &self.qvel)?,
                fused::linear(&x.last_action, &self.last_action)?,
                self.points.forward(x, self.config.visible_only)?,
            ],
            1,
        )?; // B × 4 × w
        let out = match &self.trunk {
            Trunk::Attention(t) => t.forward(&tokens)?,
            Trunk::Mlp { blocks, norm } => {
                let (b, t, w) = tokens.dims3()?;
                let mut h = tokens.reshape((b, t * w))?;
                for (n, ff1, ff2) in blocks {
                    let z = fused::gelu(&fused::linear(&n.forward(&h)?, ff1)?)?;
                    h = (h + fused::linear(&z, ff2)?)?;
                }
                norm.forward(&h)?.reshape((b, t, w))?
            }
        };
        let token = |i: usize| out.narrow(1, i, 1).and_then(|t| t.squeeze(1));
        Ok(PointTrackOutput {
            action: fused::linear(&token(2)?, &self.action_head)?,
            next_qpos: fused::linear(&token(0)?, &self.qpos_head)?,
            next_qvel: fused::linear(&token(1)?, &self.qvel_head)?,
        })
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

    fn values(dims: &[usize], seed: u64) -> Tensor {
        let n: usize = dims.iter().product();
        let v: Vec<f64> = (0..n)
            .map(|i| ((i as f64 * 0.37 + seed as f64) * 1.7).sin())
            .collect();
        Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
    }

    fn batch(b: usize, n: usize) -> PointTrackBatch {
        let mut vis = vec![1.0f64; b * n];
        vis[1] = 0.0;
        let visible = Tensor::from_vec(vis, (b, n), &Device::Cpu).unwrap();
        let m3 = visible.unsqueeze(2).unwrap();
        PointTrackBatch {
            qpos: values(&[b, 3], 1),
            qvel: values(&[b, 3], 2),
            last_action: values(&[b, 2], 3),
            current: values(&[b, n, 3], 4).broadcast_mul(&m3).unwrap(),
            goal: values(&[b, n, 3], 5).broadcast_mul(&m3).unwrap(),
            visible,
        }
    }

    fn net(config: &PointTrackConfig, n: usize) -> (VarMap, PointTrackNet) {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F64, &Device::Cpu);
        let net = PointTrackNet::new(config, 3, 2, n, &vb).unwrap();
        init_seeded(&varmap, 7, |_| 1.0).unwrap();
        // Positive biases: with zero biases a point whose first-layer units are all cut
        // off gives the second layer exactly its (zero) bias, on the ReLU's kink, and two
        // such points tie in the max-pool; finite differences disagree with any
        // gradient at kinks and ties.
        let data = varmap.data().lock().unwrap();
        let mut names: Vec<&String> = data.keys().filter(|n| n.ends_with("bias")).collect();
        names.sort();
        for (k, name) in names.into_iter().enumerate() {
            let var = &data[name];
            let b = (values(var.dims(), 20 + k as u64).affine(0.05, 0.1)).unwrap();
            var.set(&b).unwrap();
        }
        drop(data);
        (varmap, net)
    }

    fn small(encoder: PointEncoding, attention: bool) -> PointTrackConfig {
        PointTrackConfig {
            encoder,
            width: 4,
            point_width: 3,
            layers: 1,
            heads: 2,
            feed_forward: 3,
            attention,
            world_model: true,
            visible_only: true,
        }
    }

    fn loss(out: &PointTrackOutput) -> Tensor {
        let w = |t: &Tensor, s: u64| (t * values(t.dims(), s)).unwrap().sum_all().unwrap();
        (w(&out.action, 11) + w(&out.next_qpos, 12) + w(&out.next_qvel, 13)).unwrap()
    }

    #[test]
    fn gradients_match_finite_differences_for_every_variant() {
        for (encoder, attention) in [
            (PointEncoding::Paired, true),
            (PointEncoding::Decoupled, true),
            (PointEncoding::Mlp, true),
            (PointEncoding::Paired, false),
        ] {
            let (varmap, net) = net(&small(encoder, attention), 5);
            let x = batch(2, 5);
            check_gradients(&varmap, &[""], &|| loss(&net.forward(&x).unwrap()));
        }
    }

    #[test]
    fn paired_encoding_ignores_point_order_and_hidden_points() {
        let (_varmap, net) = net(&small(PointEncoding::Paired, true), 5);
        let x = batch(1, 5);
        let a = net.forward(&x).unwrap().action;
        // The same pairs in another order: the same action.
        let idx = Tensor::new(&[4u32, 2, 0, 3, 1], &Device::Cpu).unwrap();
        let perm = PointTrackBatch {
            current: x.current.index_select(&idx, 1).unwrap(),
            goal: x.goal.index_select(&idx, 1).unwrap(),
            visible: x.visible.index_select(&idx, 1).unwrap(),
            ..x.clone()
        };
        let b = net.forward(&perm).unwrap().action;
        let d = (&a - &b).unwrap().abs().unwrap().max_all().unwrap();
        assert!(d.to_scalar::<f64>().unwrap() < 1e-12);
        // Pairing matters: swapping the goals of two points changes the action.
        let swap = Tensor::new(&[2u32, 1, 0, 3, 4], &Device::Cpu).unwrap();
        let crossed = PointTrackBatch {
            goal: x.goal.index_select(&swap, 1).unwrap(),
            ..x.clone()
        };
        let c = net.forward(&crossed).unwrap().action;
        let d = (&a - &c).unwrap().abs().unwrap().max_all().unwrap();
        assert!(d.to_scalar::<f64>().unwrap() > 1e-9);
    }

    #[test]
    fn decoupled_encoding_cannot_tell_which_goal_belongs_to_which_point() {
        let (_varmap, net) = net(&small(PointEncoding::Decoupled, true), 5);
        let x = batch(1, 5);
        let a = net.forward(&x).unwrap().action;
        // Swapping the goals of two visible points keeps both sets as they were: the
        // decoupled encoder sees no difference, where the paired one does.
        let swap = Tensor::new(&[2u32, 1, 0, 3, 4], &Device::Cpu).unwrap();
        let crossed = PointTrackBatch {
            goal: x.goal.index_select(&swap, 1).unwrap(),
            ..x.clone()
        };
        let c = net.forward(&crossed).unwrap().action;
        let d = (&a - &c).unwrap().abs().unwrap().max_all().unwrap();
        assert!(d.to_scalar::<f64>().unwrap() < 1e-12);
    }

    #[test]
    fn hidden_points_count_only_in_dex4d_code_mode() {
        let x = batch(1, 5); // point 1 hidden
        let keep = Tensor::new(&[0u32, 2, 3, 4], &Device::Cpu).unwrap();
        let fewer = PointTrackBatch {
            current: x.current.index_select(&keep, 1).unwrap(),
            goal: x.goal.index_select(&keep, 1).unwrap(),
            visible: x.visible.index_select(&keep, 1).unwrap(),
            ..x.clone()
        };
        for (visible_only, same) in [(true, true), (false, false)] {
            let config = PointTrackConfig {
                visible_only,
                ..small(PointEncoding::Paired, true)
            };
            let (_varmap, net) = net(&config, 5);
            let a = net.forward(&x).unwrap().action;
            let b = net.forward(&fewer).unwrap().action;
            let d = (&a - &b).unwrap().abs().unwrap().max_all().unwrap();
            let d = d.to_scalar::<f64>().unwrap();
            assert_eq!(d < 1e-12, same, "visible_only {visible_only}: {d}");
        }
    }

    #[test]
    fn config_is_checked_and_encodings_parse() {
        assert!(PointTrackConfig::paper().validate().is_ok());
        let bad = PointTrackConfig {
            width: 6,
            heads: 4,
            ..PointTrackConfig::default()
        };
        assert!(bad.validate().is_err());
        assert_eq!(
            "decoupled".parse::<PointEncoding>().unwrap(),
            PointEncoding::Decoupled
        );
        assert!("pointnet".parse::<PointEncoding>().is_err());
    }
}
