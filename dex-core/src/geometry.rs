//! Rigid alignment (Kabsch, Umeyama) and rotation distances.
//!
//! These solve `min Σ wᵢ ‖T(sᵢ) − tᵢ‖²` over rigid transforms `T` (Kabsch) or
//! similarities (Umeyama) for corresponding points `sᵢ ↔ tᵢ`, with the SVD of the
//! 3 × 3 cross-covariance and the determinant correction that rules out
//! reflections (Kabsch 1976; Umeyama 1991, IEEE TPAMI 13(4)).

use nalgebra::{
    Isometry3, Matrix3, Point3, Rotation3, Similarity3, Translation3, UnitQuaternion, Vector3,
};

use crate::error::{Error, Result};

/// Relative size under which the second singular value marks collinear points.
const DEGENERATE_RATIO: f64 = 1e-10;

struct Moments {
    source_centroid: Vector3<f64>,
    target_centroid: Vector3<f64>,
    /// Σ wᵢ (tᵢ − t̄)(sᵢ − s̄)ᵀ / Σ wᵢ
    covariance: Matrix3<f64>,
    /// Σ wᵢ ‖sᵢ − s̄‖² / Σ wᵢ
    source_variance: f64,
}

fn moments(
    what: &'static str,
    source: &[Point3<f64>],
    target: &[Point3<f64>],
    weights: Option<&[f64]>,
) -> Result<Moments> {
    crate::error::check_len("target points", source.len(), target.len())?;
    if let Some(w) = weights {
        crate::error::check_len("weights", source.len(), w.len())?;
        if let Some(index) = w.iter().position(|w| !(w.is_finite() && *w >= 0.0)) {
            return Err(Error::InvalidValue {
                what: format!("{what} weight {index}"),
                message: format!("must be finite and non-negative, got {}", w[index]),
            });
        }
    }
    if source.len() < 3 {
        return Err(Error::TooFewPoints {
            what,
            needed: 3,
            got: source.len(),
        });
    }
    let sums = match weights {
        Some(w) => weighted_sums(source, target, w.iter().copied()),
        None => weighted_sums(source, target, std::iter::repeat(1.0)),
    };
    let Sums { total, cs, ct } = sums;
    if !(cs.iter().chain(ct.iter()).all(|v| v.is_finite())) {
        for (name, pts) in [("source points", source), ("target points", target)] {
            if let Some(index) = pts
                .iter()
                .position(|p| !p.coords.iter().all(|c| c.is_finite()))
            {
                return Err(Error::NonFiniteInput {
                    what: name,
                    index,
                    value: pts[index]
                        .coords
                        .iter()
                        .copied()
                        .find(|c| !c.is_finite())
                        .unwrap_or(f64::NAN),
                });
            }
        }
        return Err(Error::Degenerate {
            what,
            message: "coordinates too large to sum in double precision".into(),
        });
    }
    if total <= 0.0 {
        return Err(Error::Degenerate {
            what,
            message: "the weights sum to zero".into(),
        });
    }
    let cs = cs / total;
    let ct = ct / total;
    let (h, source_variance) = match weights {
        Some(w) => cross_covariance(source, target, w.iter().copied(), &cs, &ct),
        None => cross_covariance(source, target, std::iter::repeat(1.0), &cs, &ct),
    };
    let covariance = Matrix3::from_row_slice(&h);
    Ok(Moments {
        source_centroid: cs,
        target_centroid: ct,
        covariance: covariance / total,
        source_variance: source_variance / total,
    })
}

struct Sums {
    total: f64,
    cs: Vector3<f64>,
    ct: Vector3<f64>,
}

/// First pass: weighted sums of the points. A NaN or infinite coordinate makes
/// a sum non-finite; only then is the culprit searched for, so valid input pays
/// for no separate check. Generic over the weights so both cases inline.
#[inline(always)]
fn weighted_sums(
    source: &[Point3<f64>],
    target: &[Point3<f64>],
    weights: impl Iterator<Item = f64>,
) -> Sums {
    let mut total = 0.0;
    let (mut cs, mut ct) = (Vector3::zeros(), Vector3::zeros());
    for ((s, t), w) in source.iter().zip(target).zip(weights) {
        total += w;
        cs += s.coords * w;
        ct += t.coords * w;
    }
    Sums { total, cs, ct }
}

/// Second pass: Σ w (t − t̄)(s − s̄)ᵀ in nine scalars, and Σ w ‖s − s̄‖².
#[inline(always)]
fn cross_covariance(
    source: &[Point3<f64>],
    target: &[Point3<f64>],
    weights: impl Iterator<Item = f64>,
    cs: &Vector3<f64>,
    ct: &Vector3<f64>,
) -> ([f64; 9], f64) {
    let mut h = [0.0f64; 9];
    let mut source_variance = 0.0;
    for ((sp, tp), w) in source.iter().zip(target).zip(weights) {
        let s = sp.coords - cs;
        let t = (tp.coords - ct) * w;
        for r in 0..3 {
            for c in 0..3 {
                h[3 * r + c] += t[r] * s[c];
            }
        }
        source_variance += w * s.norm_squared();
    }
    (h, source_variance)
}

/// The rotation `R` maximising `tr(Rᵀ C)` and the corrected singular values.
fn best_rotation(what: &'static str, c: &Matrix3<f64>) -> Result<(Rotation3<f64>, Vector3<f64>)> {
    let svd = c.svd(true, true);
    let (Some(u), Some(v_t)) = (svd.u, svd.v_t) else {
        return Err(Error::Degenerate {
            what,
            message: "the SVD of the cross-covariance failed".into(),
        });
    };
    let mut sv = svd.singular_values;
    let mut sorted = [sv[0], sv[1], sv[2]];
    sorted.sort_by(|a, b| b.total_cmp(a));
    if sorted[0] <= 0.0 || sorted[1] <= DEGENERATE_RATIO * sorted[0] {
        return Err(Error::Degenerate {
            what,
            message: "the points are coincident or collinear".into(),
        });
    }
    let d = (u * v_t).determinant().signum();
    let mut s = Matrix3::identity();
    if d < 0.0 {
        // Flip the direction of the smallest singular value.
        let k = (0..3).min_by(|&a, &b| sv[a].total_cmp(&sv[b])).unwrap_or(2);
        s[(k, k)] = -1.0;
        sv[k] = -sv[k];
    }
    let r = u * s * v_t;
    Ok((Rotation3::from_matrix_unchecked(r), sv))
}

/// The rigid transform `T` (rotation + translation) that best maps `source[i]`
/// onto `target[i]` in the least-squares sense.
///
/// # Errors
///
/// [`Error::LengthMismatch`] if the slices differ in length,
/// [`Error::TooFewPoints`] below 3 points, [`Error::NonFiniteInput`] for NaN or
/// infinite coordinates, [`Error::Degenerate`] for coincident or collinear points.
///
/// # Examples
///
/// ```
/// use dex_core::geometry::kabsch;
/// use dex_core::nalgebra::{Isometry3, Point3, Vector3};
///
/// let truth = Isometry3::new(Vector3::new(0.1, -0.2, 0.05), Vector3::new(0.3, 0.2, -0.1));
/// let source = [Point3::new(0.0, 0.0, 0.0), Point3::new(1.0, 0.0, 0.0),
///               Point3::new(0.0, 1.0, 0.0), Point3::new(0.0, 0.0, 1.0)];
/// let target: Vec<_> = source.iter().map(|p| truth * p).collect();
/// let estimate = kabsch(&source, &target)?;
/// assert!((estimate.to_matrix() - truth.to_matrix()).norm() < 1e-9);
/// # Ok::<(), dex_core::Error>(())
/// ```
pub fn kabsch(source: &[Point3<f64>], target: &[Point3<f64>]) -> Result<Isometry3<f64>> {
    rigid("Kabsch alignment", source, target, None)
}

/// Weighted [`kabsch`]: point `i` counts with weight `weights[i]` (≥ 0).
///
/// # Errors
///
/// As [`kabsch`], and [`Error::InvalidValue`] for a negative or non-finite weight.
pub fn kabsch_weighted(
    source: &[Point3<f64>],
    target: &[Point3<f64>],
    weights: &[f64],
) -> Result<Isometry3<f64>> {
    rigid("Kabsch alignment", source, target, Some(weights))
}

fn rigid(
    what: &'static str,
    source: &[Point3<f64>],
    target: &[Point3<f64>],
    weights: Option<&[f64]>,
) -> Result<Isometry3<f64>> {
    let m = moments(what, source, target, weights)?;
    let (r, _) = best_rotation(what, &m.covariance)?;
    let t = m.target_centroid - r * m.source_centroid;
    Ok(Isometry3::from_parts(
        Translation3::from(t),
        UnitQuaternion::from_rotation_matrix(&r),
    ))
}

/// The similarity (uniform scale, rotation, translation) that best maps
/// `source[i]` onto `target[i]` (Umeyama's method).
///
/// # Errors
///
/// As [`kabsch`].
pub fn umeyama(source: &[Point3<f64>], target: &[Point3<f64>]) -> Result<Similarity3<f64>> {
    let what = "Umeyama alignment";
    let m = moments(what, source, target, None)?;
    let (r, sv) = best_rotation(what, &m.covariance)?;
    let scale = sv.sum() / m.source_variance;
    let t = m.target_centroid - scale * (r * m.source_centroid);
    Ok(Similarity3::from_parts(
        Translation3::from(t),
        UnitQuaternion::from_rotation_matrix(&r),
        scale,
    ))
}

/// Root-mean-square distance between `transform * source[i]` and `target[i]`.
///
/// # Errors
///
/// [`Error::LengthMismatch`] if the slices differ in length, [`Error::TooFewPoints`] if empty.
pub fn alignment_rmse(
    transform: &Isometry3<f64>,
    source: &[Point3<f64>],
    target: &[Point3<f64>],
) -> Result<f64> {
    crate::error::check_len("target points", source.len(), target.len())?;
    if source.is_empty() {
        return Err(Error::TooFewPoints {
            what: "alignment RMSE",
            needed: 1,
            got: 0,
        });
    }
    let sum: f64 = source
        .iter()
        .zip(target)
        .map(|(s, t)| (transform * s - t).norm_squared())
        .sum();
    Ok((sum / source.len() as f64).sqrt())
}

/// Angle (radians, in `[0, π]`) of the rotation that takes `a` to `b`.
pub fn rotation_distance(a: &UnitQuaternion<f64>, b: &UnitQuaternion<f64>) -> f64 {
    a.angle_to(b)
}

/// Rotation error between two corresponding point sets as Dex4D measures it: the
/// angle of the rotation of the best rigid alignment of `current` onto `goal`.
///
/// # Errors
///
/// As [`kabsch`].
pub fn point_set_rotation_error(current: &[Point3<f64>], goal: &[Point3<f64>]) -> Result<f64> {
    Ok(kabsch(current, goal)?.rotation.angle())
}
