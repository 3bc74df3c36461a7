//! Forward kinematics (single and batched) and geometric Jacobians.
//!
//! Every pose is the pose of a link frame in the model's root frame (the palm for
//! the built-in hands). Poses are indexed like [`HandModel::links`]. The model
//! precomputes a flat program (one step per joint, parents before children), so
//! one evaluation is a single pass without allocation.

use nalgebra::{Isometry3, Matrix6xX, Point3, Quaternion, Translation3, UnitQuaternion};
use ndarray::ArrayView2;

use crate::error::{Result, check_finite, check_len};
use crate::model::{Frame, HandModel, LinkId, Motion};
use crate::types::FingertipKeypoints;

impl HandModel {
    /// Poses of every link in the root frame for configuration `q` (in model joint order).
    ///
    /// Values outside the joint limits are evaluated as given; use
    /// [`HandModel::check_configuration`] to reject them.
    ///
    /// # Errors
    ///
    /// [`crate::Error::LengthMismatch`] or [`crate::Error::NonFiniteInput`].
    ///
    /// # Examples
    ///
    /// ```
    /// let hand = dex_core::HandModel::allegro_right();
    /// let q = hand.mid_configuration();
    /// let poses = hand.forward_kinematics(&q)?;
    /// assert_eq!(poses.len(), hand.links().len());
    /// # Ok::<(), dex_core::Error>(())
    /// ```
    pub fn forward_kinematics(&self, q: &[f64]) -> Result<Vec<Isometry3<f64>>> {
        let mut out = vec![Isometry3::identity(); self.links.len()];
        self.forward_kinematics_into(q, &mut out)?;
        Ok(out)
    }

    /// As [`HandModel::forward_kinematics`], writing into `out` (one pose per link).
    ///
    /// # Errors
    ///
    /// [`crate::Error::LengthMismatch`] (for `q` or `out`) or [`crate::Error::NonFiniteInput`].
    pub fn forward_kinematics_into(&self, q: &[f64], out: &mut [Isometry3<f64>]) -> Result<()> {
        check_len("joint configuration", self.dof(), q.len())?;
        check_len("output poses", self.links.len(), out.len())?;
        check_finite("joint configuration", q)?;
        self.fk_unchecked(q, out);
        Ok(())
    }

    /// Forward kinematics of many configurations: `qs` has one configuration per
    /// row (shape `B × dof`); the result holds `B × links` poses, configuration
    /// `b`'s link `l` at index `b * links + l`.
    ///
    /// # Errors
    ///
    /// [`crate::Error::ShapeMismatch`] or [`crate::Error::NonFiniteInput`].
    pub fn forward_kinematics_batch(&self, qs: ArrayView2<'_, f64>) -> Result<Vec<Isometry3<f64>>> {
        let mut out = vec![Isometry3::identity(); qs.nrows() * self.links.len()];
        self.forward_kinematics_batch_into(qs, &mut out)?;
        Ok(out)
    }

    /// As [`HandModel::forward_kinematics_batch`], writing into `out`; allocates nothing.
    ///
    /// # Errors
    ///
    /// [`crate::Error::ShapeMismatch`], [`crate::Error::LengthMismatch`] (for `out`)
    /// or [`crate::Error::NonFiniteInput`].
    pub fn forward_kinematics_batch_into(
        &self,
        qs: ArrayView2<'_, f64>,
        out: &mut [Isometry3<f64>],
    ) -> Result<()> {
        self.check_batch(qs, out.len())?;
        let nl = self.links.len();
        if let Some(flat) = qs.as_slice() {
            for (q, poses) in flat
                .chunks_exact(self.dof().max(1))
                .zip(out.chunks_exact_mut(nl))
            {
                self.fk_unchecked(q, poses);
            }
        } else {
            let mut q = vec![0.0; self.dof()];
            for (row, poses) in qs.rows().into_iter().zip(out.chunks_exact_mut(nl)) {
                q.iter_mut().zip(row).for_each(|(d, s)| *d = *s);
                self.fk_unchecked(&q, poses);
            }
        }
        Ok(())
    }

    /// As [`HandModel::forward_kinematics_batch_into`], spread over rayon's thread pool.
    ///
    /// # Errors
    ///
    /// As [`HandModel::forward_kinematics_batch_into`].
    #[cfg(feature = "rayon")]
    pub fn forward_kinematics_batch_par_into(
        &self,
        qs: ArrayView2<'_, f64>,
        out: &mut [Isometry3<f64>],
    ) -> Result<()> {
        use rayon::prelude::*;
        self.check_batch(qs, out.len())?;
        let nl = self.links.len();
        const CHUNK: usize = 64;
        let dof = self.dof();
        out.par_chunks_mut(nl * CHUNK)
            .enumerate()
            .for_each(|(c, poses)| {
                let mut q = vec![0.0; dof];
                for (k, p) in poses.chunks_exact_mut(nl).enumerate() {
                    let row = qs.row(c * CHUNK + k);
                    q.iter_mut().zip(row).for_each(|(d, s)| *d = *s);
                    self.fk_unchecked(&q, p);
                }
            });
        Ok(())
    }

    fn check_batch(&self, qs: ArrayView2<'_, f64>, out_len: usize) -> Result<()> {
        if qs.ncols() != self.dof() {
            return Err(crate::Error::ShapeMismatch {
                what: "batch of joint configurations",
                expected: format!("(B, {})", self.dof()),
                got: qs.shape().to_vec(),
            });
        }
        check_len("output poses", qs.nrows() * self.links.len(), out_len)?;
        if let Some((i, v)) = qs.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(crate::Error::NonFiniteInput {
                what: "batch of joint configurations",
                index: i,
                value: *v,
            });
        }
        Ok(())
    }

    /// The forward-kinematics program; `q` and `out` have the right lengths.
    #[inline]
    pub(crate) fn fk_unchecked(&self, q: &[f64], out: &mut [Isometry3<f64>]) {
        out[self.root.0] = Isometry3::identity();
        for step in &self.program {
            let parent = out[step.parent];
            let (rot, t) = match step.motion {
                Motion::Fixed => (step.origin_rot, step.origin_t),
                Motion::Revolute { axis, q: src } => {
                    let (s, c) = crate::sincos::sin_cos(0.5 * src.value(q));
                    let turn = UnitQuaternion::new_unchecked(Quaternion::new(
                        c,
                        axis.x * s,
                        axis.y * s,
                        axis.z * s,
                    ));
                    (step.origin_rot * turn, step.origin_t)
                }
                Motion::Prismatic { axis, q: src } => (
                    step.origin_rot,
                    step.origin_t + step.origin_rot * (axis * src.value(q)),
                ),
            };
            out[step.link] = Isometry3::from_parts(
                Translation3::from(parent.translation.vector + parent.rotation * t),
                parent.rotation * rot,
            );
        }
    }

    /// Pose of a named frame given the link poses from forward kinematics.
    pub fn frame_pose(&self, link_poses: &[Isometry3<f64>], frame: &Frame) -> Isometry3<f64> {
        link_poses[frame.link.0] * frame.offset
    }

    /// Fingertip positions in the root frame, in [`HandModel::fingertips`] order.
    ///
    /// # Errors
    ///
    /// As [`HandModel::forward_kinematics`].
    pub fn fingertip_positions(&self, q: &[f64]) -> Result<Vec<Point3<f64>>> {
        let poses = self.forward_kinematics(q)?;
        Ok(self
            .fingertips
            .iter()
            .map(|f| self.frame_pose(&poses, f).translation.vector.into())
            .collect())
    }

    /// Keypoint positions in the root frame, in [`HandModel::keypoints`] order.
    ///
    /// # Errors
    ///
    /// As [`HandModel::forward_kinematics`].
    pub fn keypoint_positions(&self, q: &[f64]) -> Result<FingertipKeypoints> {
        let poses = self.forward_kinematics(q)?;
        Ok(FingertipKeypoints::new(
            self.keypoints
                .iter()
                .map(|f| self.frame_pose(&poses, f).translation.vector.into())
                .collect(),
        ))
    }

    /// Geometric Jacobian (6 × dof) of a point rigidly attached to `link` (`point`
    /// given in the link frame), in the root frame: rows 0–2 map `qdot` to the
    /// point's linear velocity, rows 3–5 to the link's angular velocity.
    ///
    /// Columns of joints that do not move the link are zero; a mimic joint adds
    /// its multiplier times its column to its source's column.
    ///
    /// # Errors
    ///
    /// As [`HandModel::forward_kinematics`], or [`crate::Error::UnknownName`] if
    /// `link` is not a link of this model.
    ///
    /// # Examples
    ///
    /// ```
    /// let hand = dex_core::HandModel::leap_right();
    /// let tip = &hand.fingertips()[0];
    /// let j = hand.jacobian(&hand.mid_configuration(), tip.link, &tip.offset.translation.vector.into())?;
    /// assert_eq!(j.shape(), (6, 16));
    /// # Ok::<(), dex_core::Error>(())
    /// ```
    pub fn jacobian(&self, q: &[f64], link: LinkId, point: &Point3<f64>) -> Result<Matrix6xX<f64>> {
        if link.0 >= self.links.len() {
            return Err(crate::Error::UnknownName {
                kind: "link id",
                name: link.0.to_string(),
                known: Vec::new(),
            });
        }
        let poses = self.forward_kinematics(q)?;
        let mut out = Matrix6xX::zeros(self.dof());
        self.jacobian_from_poses(&poses, link, point, &mut out);
        Ok(out)
    }

    /// Geometric Jacobian of a named frame's origin (see [`HandModel::jacobian`]).
    ///
    /// # Errors
    ///
    /// As [`HandModel::jacobian`].
    pub fn frame_jacobian(&self, q: &[f64], frame: &Frame) -> Result<Matrix6xX<f64>> {
        self.jacobian(q, frame.link, &frame.offset.translation.vector.into())
    }

    /// The Jacobian from link poses already computed by forward kinematics,
    /// written into `out` (6 × dof, overwritten); allocates nothing.
    ///
    /// # Panics
    ///
    /// If `link_poses` or `out` do not have this model's sizes, or `link` is not
    /// one of its links.
    pub fn jacobian_from_poses(
        &self,
        link_poses: &[Isometry3<f64>],
        link: LinkId,
        point: &Point3<f64>,
        out: &mut Matrix6xX<f64>,
    ) {
        assert_eq!(link_poses.len(), self.links.len(), "one pose per link");
        assert_eq!(out.ncols(), self.dof(), "one column per degree of freedom");
        out.fill(0.0);
        let p = link_poses[link.0] * point;
        let mut cur = self.links[link.0].parent_joint;
        while let Some(jid) = cur {
            let joint = &self.joints[jid.0];
            cur = self.links[joint.parent.0].parent_joint;
            let (col, scale) = match (joint.dof, joint.mimic) {
                (Some(d), _) => (d, 1.0),
                (None, Some(m)) => match self.joints[m.source.0].dof {
                    Some(d) => (d, m.multiplier),
                    None => continue,
                },
                (None, None) => continue,
            };
            let frame = &link_poses[joint.child.0];
            let z = frame.rotation * joint.axis.into_inner();
            let mut column = out.column_mut(col);
            match joint.kind {
                crate::JointKind::Prismatic => {
                    for r in 0..3 {
                        column[r] += scale * z[r];
                    }
                }
                _ => {
                    let v = z.cross(&(p - Point3::from(frame.translation.vector)));
                    for r in 0..3 {
                        column[r] += scale * v[r];
                        column[r + 3] += scale * z[r];
                    }
                }
            }
        }
    }
}
