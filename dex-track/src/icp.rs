//! Iterative closest point: rigid registration of a source cloud onto a target
//! cloud without known correspondences.
//!
//! Each iteration matches every transformed source point to its nearest target
//! point (k-d tree, `kiddo`), drops matches farther than the correspondence
//! limit and, optionally, the worst fraction of the rest (trimming), then
//! solves for an increment:
//!
//! - **point-to-plane** (default): the linearised least squares of
//!   `Σ ((R p + t − q) · n)²` with the target's normals `n` (6 × 6 normal equations);
//! - **point-to-point**: the closed-form Kabsch alignment of the matches.
//!
//! The increment is expressed in the target frame and applied on the left of
//! the current estimate (`T ← ΔT · T`), because the matched source points are
//! already expressed there; applying it on the right is the classic bug that
//! makes ICP diverge (tested in this module).

use kiddo::{ImmutableKdTree, SquaredEuclidean};
use nalgebra::{
    Isometry3, Matrix3, Matrix6, Point3, SymmetricEigen, Translation3, UnitQuaternion, Vector3,
    Vector6,
};
use std::num::NonZero;

use crate::error::{Result, invalid};

/// How each iteration measures the misfit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IcpMethod {
    /// Distance of each source point to the tangent plane of its match.
    #[default]
    PointToPlane,
    /// Distance of each source point to its match.
    PointToPoint,
}

/// ICP settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IcpConfig {
    /// Misfit measure.
    pub method: IcpMethod,
    /// Matches farther than this (m) are ignored.
    pub max_correspondence_distance: f64,
    /// Largest number of iterations.
    pub max_iterations: usize,
    /// Fraction of the matches kept after sorting by distance (1 = no trimming).
    pub trim_fraction: f64,
    /// Stop when an increment moves less than this (rad, and m).
    pub tolerance: f64,
    /// Also stop when the RMS distance of the matches changes by less than
    /// this (m) from one iteration to the next: a settled estimate then only
    /// wobbles as matches at the edges switch (Open3D's `relative_rmse` works
    /// the same way, in metres despite its name).
    pub rmse_tolerance: f64,
    /// A final match closer than this (m) is an inlier; set it to a few times
    /// the sampling spacing plus the sensor noise.
    pub inlier_distance: f64,
    /// Converged only if at least this fraction of source points are inliers at
    /// the end. A wrong pose can settle with every point matched within the
    /// correspondence limit (a mug turned half a turn about its axis does), so
    /// the fit, not only the step size, decides.
    pub min_fitness: f64,
    /// Neighbours used to estimate each target normal.
    pub normal_neighbours: usize,
}

impl Default for IcpConfig {
    fn default() -> Self {
        Self {
            method: IcpMethod::PointToPlane,
            max_correspondence_distance: 0.05,
            max_iterations: 50,
            trim_fraction: 1.0,
            tolerance: 1e-6,
            rmse_tolerance: 1e-6,
            inlier_distance: 0.005,
            min_fitness: 0.9,
            normal_neighbours: 10,
        }
    }
}

/// What ICP found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IcpResult {
    /// The source-to-target transform.
    pub transform: Isometry3<f64>,
    /// Iterations run.
    pub iterations: usize,
    /// RMS distance of the kept matches at the end (m).
    pub rmse: f64,
    /// Fraction of source points that are inliers (within `inlier_distance`) at the end.
    pub fitness: f64,
    /// Whether the increments fell below the tolerance and the fitness is high enough.
    pub converged: bool,
}

/// A target cloud prepared for repeated registration: its k-d tree and normals.
pub struct IcpTarget {
    points: Vec<Point3<f64>>,
    normals: Vec<Vector3<f64>>,
    /// Single precision is plenty to find neighbours; distances are recomputed in f64.
    tree: ImmutableKdTree<f32, 3>,
}

impl std::fmt::Debug for IcpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IcpTarget")
            .field("points", &self.points.len())
            .finish()
    }
}

fn check_cloud(what: &str, points: &[Point3<f64>]) -> Result<()> {
    if points.len() < 3 {
        return Err(invalid(format!(
            "{what} needs at least 3 points, got {}",
            points.len()
        )));
    }
    if let Some(i) = points
        .iter()
        .position(|p| !p.coords.iter().all(|c| c.is_finite()))
    {
        return Err(invalid(format!("{what} point {i} is not finite")));
    }
    Ok(())
}

impl IcpTarget {
    /// Builds the k-d tree and estimates a normal per point from its
    /// `neighbours` nearest neighbours (the direction of least spread).
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidInput`] for fewer than 3 points, a non-finite
    /// coordinate, or fewer than 3 neighbours.
    pub fn new(points: &[Point3<f64>], neighbours: usize) -> Result<Self> {
        check_cloud("ICP target", points)?;
        if neighbours < 3 {
            return Err(invalid("normal estimation needs at least 3 neighbours"));
        }
        let coords: Vec<[f32; 3]> = points
            .iter()
            .map(|p| [p.x as f32, p.y as f32, p.z as f32])
            .collect();
        let tree: ImmutableKdTree<f32, 3> = ImmutableKdTree::new_from_slice(&coords);
        let k = NonZero::new(neighbours.min(points.len())).unwrap_or(NonZero::<usize>::MIN);
        let normal_of = |c: &[f32; 3]| -> Vector3<f64> {
            // Unsorted: the order of the neighbours does not matter for their covariance.
            let nn = tree.nearest_n_within::<SquaredEuclidean>(c, f32::INFINITY, k, false);
            let mean = nn
                .iter()
                .fold(Vector3::zeros(), |a, n| a + points[n.item as usize].coords)
                / nn.len() as f64;
            let mut cov = Matrix3::zeros();
            for n in &nn {
                let d = points[n.item as usize].coords - mean;
                cov += d * d.transpose();
            }
            let eig = SymmetricEigen::new(cov);
            let i = eig.eigenvalues.imin();
            eig.eigenvectors.column(i).into_owned()
        };
        #[cfg(feature = "rayon")]
        let normals = {
            use rayon::prelude::*;
            coords.par_iter().map(normal_of).collect()
        };
        #[cfg(not(feature = "rayon"))]
        let normals = coords.iter().map(normal_of).collect();
        Ok(Self {
            points: points.to_vec(),
            normals,
            tree,
        })
    }

    /// The target points.
    pub fn points(&self) -> &[Point3<f64>] {
        &self.points
    }

    /// The estimated unit normals (sign arbitrary).
    pub fn normals(&self) -> &[Vector3<f64>] {
        &self.normals
    }

    /// Registers `source` onto this target, starting from `initial`.
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidInput`] for a bad source cloud or settings.
    pub fn register(
        &self,
        source: &[Point3<f64>],
        initial: &Isometry3<f64>,
        config: &IcpConfig,
    ) -> Result<IcpResult> {
        check_cloud("ICP source", source)?;
        let positive = |v: f64| v.is_finite() && v > 0.0;
        let valid = positive(config.max_correspondence_distance)
            && positive(config.inlier_distance)
            && positive(config.trim_fraction)
            && config.trim_fraction <= 1.0;
        if !valid || config.max_iterations == 0 {
            return Err(invalid(
                "ICP needs a positive correspondence distance, a trim fraction in (0, 1] and at least one iteration",
            ));
        }
        let limits = MatchLimits {
            max_d2: config.max_correspondence_distance.powi(2),
            inlier_d2: config.inlier_distance.powi(2),
            keep: config.trim_fraction,
        };
        let mut transform = *initial;
        let mut matches: Vec<(f64, usize, usize)> = Vec::with_capacity(source.len());
        let mut moved = vec![Point3::origin(); source.len()];
        let mut iterations = 0;
        let mut small_step = false;
        let mut last_rmse = f64::INFINITY;
        // Whether `matches` and `within` describe the current `transform`.
        let mut current = false;
        let mut within = 0;
        for _ in 0..config.max_iterations {
            iterations += 1;
            within = self.match_points(source, &transform, &limits, &mut moved, &mut matches);
            current = true;
            if matches.len() < 6 {
                break;
            }
            let rmse = rms(&matches);
            if (last_rmse - rmse).abs() <= config.rmse_tolerance {
                small_step = true;
                break;
            }
            last_rmse = rmse;
            let increment = match config.method {
                IcpMethod::PointToPlane => self.point_to_plane_step(&moved, &matches),
                IcpMethod::PointToPoint => self.point_to_point_step(&moved, &matches),
            };
            let Some(increment) = increment else { break };
            transform = increment * transform;
            current = false;
            if increment.rotation.angle() < config.tolerance
                && increment.translation.vector.norm() < config.tolerance
            {
                small_step = true;
                break;
            }
        }
        if !current {
            within = self.match_points(source, &transform, &limits, &mut moved, &mut matches);
        }
        let rmse = rms(&matches);
        let fitness = within as f64 / source.len() as f64;
        Ok(IcpResult {
            transform,
            iterations,
            rmse,
            fitness,
            converged: small_step && fitness >= config.min_fitness,
        })
    }

    /// Fills `matches` with (squared distance, source index, target index) and
    /// returns how many source points lie within `inlier_d2` of their match
    /// (before trimming).
    fn match_points(
        &self,
        source: &[Point3<f64>],
        transform: &Isometry3<f64>,
        limits: &MatchLimits,
        moved: &mut [Point3<f64>],
        matches: &mut Vec<(f64, usize, usize)>,
    ) -> usize {
        matches.clear();
        let nearest = |s: &Point3<f64>| -> (Point3<f64>, f64, usize) {
            let p = transform * s;
            let n = self
                .tree
                .nearest_one::<SquaredEuclidean>(&[p.x as f32, p.y as f32, p.z as f32]);
            let j = n.item as usize;
            (p, (p - self.points[j]).norm_squared(), j)
        };
        #[cfg(feature = "rayon")]
        let found: Vec<(Point3<f64>, f64, usize)> = {
            use rayon::prelude::*;
            source.par_iter().with_min_len(512).map(nearest).collect()
        };
        #[cfg(not(feature = "rayon"))]
        let found: Vec<(Point3<f64>, f64, usize)> = source.iter().map(nearest).collect();
        let mut inliers = 0;
        for (i, (p, d2, j)) in found.into_iter().enumerate() {
            moved[i] = p;
            if d2 <= limits.inlier_d2 {
                inliers += 1;
            }
            if d2 <= limits.max_d2 {
                matches.push((d2, i, j));
            }
        }
        if limits.keep < 1.0 && !matches.is_empty() {
            let k = ((matches.len() as f64 * limits.keep).ceil() as usize).clamp(1, matches.len());
            matches.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0));
            matches.truncate(k);
        }
        inliers
    }

    fn point_to_plane_step(
        &self,
        moved: &[Point3<f64>],
        matches: &[(f64, usize, usize)],
    ) -> Option<Isometry3<f64>> {
        let mut ata = Matrix6::<f64>::zeros();
        let mut atb = Vector6::<f64>::zeros();
        for &(_, i, j) in matches {
            let p = moved[i].coords;
            let q = self.points[j].coords;
            let n = self.normals[j];
            let c = p.cross(&n);
            let row = Vector6::new(c.x, c.y, c.z, n.x, n.y, n.z);
            let r = (p - q).dot(&n);
            ata += row * row.transpose();
            atb -= row * r;
        }
        let x = ata.cholesky()?.solve(&atb);
        let rotation = UnitQuaternion::from_scaled_axis(Vector3::new(x[0], x[1], x[2]));
        Some(Isometry3::from_parts(
            Translation3::new(x[3], x[4], x[5]),
            rotation,
        ))
    }

    fn point_to_point_step(
        &self,
        moved: &[Point3<f64>],
        matches: &[(f64, usize, usize)],
    ) -> Option<Isometry3<f64>> {
        let src: Vec<Point3<f64>> = matches.iter().map(|m| moved[m.1]).collect();
        let dst: Vec<Point3<f64>> = matches.iter().map(|m| self.points[m.2]).collect();
        dex_core::geometry::kabsch(&src, &dst).ok()
    }
}

/// Squared distance limits of a matching pass, and the fraction of matches kept.
struct MatchLimits {
    max_d2: f64,
    inlier_d2: f64,
    keep: f64,
}

/// RMS distance of matches (infinite when there are none).
fn rms(matches: &[(f64, usize, usize)]) -> f64 {
    if matches.is_empty() {
        f64::INFINITY
    } else {
        (matches.iter().map(|m| m.0).sum::<f64>() / matches.len() as f64).sqrt()
    }
}

/// One-shot ICP: builds the target's tree and normals, then registers.
///
/// # Errors
///
/// As [`IcpTarget::new`] and [`IcpTarget::register`].
pub fn icp(
    source: &[Point3<f64>],
    target: &[Point3<f64>],
    initial: &Isometry3<f64>,
    config: &IcpConfig,
) -> Result<IcpResult> {
    IcpTarget::new(target, config.normal_neighbours)?.register(source, initial, config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid_box() -> Vec<Point3<f64>> {
        // Surface samples of a 6 × 4 × 2 cm box, every 4 mm.
        let (a, b, c) = (0.03, 0.02, 0.01);
        let mut pts = Vec::new();
        let steps =
            |h: f64| (0..=((2.0 * h / 0.004).round() as i32)).map(move |k| -h + k as f64 * 0.004);
        for x in steps(a) {
            for y in steps(b) {
                pts.push(Point3::new(x, y, c));
                pts.push(Point3::new(x, y, -c));
            }
            for z in steps(c) {
                pts.push(Point3::new(x, b, z));
                pts.push(Point3::new(x, -b, z));
            }
        }
        for y in steps(b) {
            for z in steps(c) {
                pts.push(Point3::new(a, y, z));
                pts.push(Point3::new(-a, y, z));
            }
        }
        pts
    }

    #[test]
    fn increments_compose_on_the_left() {
        // The estimate starts far from identity (0.8 rad) but close to the
        // truth, so nearest neighbours are the true correspondences and one
        // Kabsch step is exact, provided the increment is composed on the left.
        let target = grid_box();
        let truth = Isometry3::new(Vector3::new(0.02, 0.01, 0.0), Vector3::new(0.0, 0.0, 0.8));
        let nudge = Isometry3::new(Vector3::new(0.001, 0.0, 0.0), Vector3::new(0.02, 0.0, 0.0));
        let initial = truth * nudge.inverse();
        let source: Vec<_> = target.iter().map(|p| truth.inverse() * p).collect();
        let config = IcpConfig {
            method: IcpMethod::PointToPoint,
            ..IcpConfig::default()
        };
        let r = icp(&source, &target, &initial, &config).unwrap();
        let err = (r.transform.to_homogeneous() - truth.to_homogeneous())
            .abs()
            .max();
        assert!(err < 1e-6, "error {err}");
        assert!(r.converged && r.rmse < 1e-6, "{r:?}");
    }

    #[test]
    fn bad_inputs_are_errors() {
        let target = grid_box();
        let two = [Point3::origin(), Point3::new(1.0, 0.0, 0.0)];
        assert!(icp(&two, &target, &Isometry3::identity(), &IcpConfig::default()).is_err());
        let mut nan = target.clone();
        nan[3].x = f64::NAN;
        assert!(icp(&target, &nan, &Isometry3::identity(), &IcpConfig::default()).is_err());
        let bad = IcpConfig {
            trim_fraction: 0.0,
            ..IcpConfig::default()
        };
        assert!(icp(&target, &target, &Isometry3::identity(), &bad).is_err());
    }
}
