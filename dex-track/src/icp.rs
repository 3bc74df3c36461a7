//! Iterative closest point: rigid registration of a source cloud onto a target
//! cloud without known correspondences.
//!
//! Each iteration matches every transformed source point to its exact nearest
//! target point, drops matches farther than the correspondence limit and,
//! optionally, the worst fraction of the rest (trimming), then solves for an
//! increment:
//!
//! - **point-to-plane** (default): the linearised least squares of
//!   `Σ ((R p + t − q) · n)²` with the target's normals `n` (6 × 6 normal
//!   equations); the three small angles found are composed as
//!   `R = Rz(γ) Ry(β) Rx(α)`, as Open3D does (the exponential map is equally
//!   first-order; on the synthetic mug of `benches/peers/icp_open3d.py`, seed 1,
//!   it settled 81° off where this composition converges);
//! - **point-to-point**: the closed-form Kabsch alignment of the matches.
//!
//! The increment is expressed in the target frame and applied on the left of
//! the current estimate (`T ← ΔT · T`), because the matched source points are
//! already expressed there; applying it on the right is the classic bug that
//! makes ICP diverge (tested in this module).
//!
//! **Where the time goes.** [`IcpTarget::new`] builds a k-d tree of the target
//! (tight boxes, 24 points a leaf) and, leaf by leaf, every point's
//! `normal_neighbours` nearest neighbours: its normal, and a list that holds
//! every target point within a known radius of it. A match pass then starts
//! each source point at its previous match and walks that neighbour graph: once
//! the best listed point is closer than the radius minus the walk's distance,
//! no unlisted point can be closer, so the match is exact without a tree
//! search; only the first passes, where points still move by more than the
//! lists cover, search the tree, under the bound of the best candidate seen
//! (the source is sorted along a Z-order curve, so the previous point's match
//! is one). Open3D searches a tree from the root for every point of every pass.

use nalgebra::{
    Isometry3, Matrix3, Matrix6, Point3, SymmetricEigen, Translation3, UnitQuaternion, Vector3,
    Vector6,
};

use crate::error::{Result, invalid};

mod tree;
use tree::{Batch, PointTree};

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
    tree: PointTree,
    /// Each point's nearest neighbours (`stride` per point, itself included)…
    neighbours: Vec<u32>,
    stride: usize,
    /// …and a radius within which every point is among them (m).
    covered: Vec<f64>,
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
        let tree = PointTree::new(&coords);
        // Neighbourhoods leaf by leaf: the points near a leaf are gathered once for all
        // of its points.
        let stride = neighbours.min(points.len());
        let of_leaf = |batch: &mut Batch, leaf: &std::ops::Range<usize>| {
            let mut out = Vec::with_capacity(leaf.len());
            let mut lists = Vec::with_capacity(leaf.len() * stride);
            tree.nearest_k_of_slots(leaf.clone(), neighbours, batch, |slot, nn| {
                let mean = nn
                    .iter()
                    .fold(Vector3::zeros(), |a, n| a + points[n.1 as usize].coords)
                    / nn.len() as f64;
                let mut cov = Matrix3::zeros();
                for n in nn {
                    let d = points[n.1 as usize].coords - mean;
                    cov += d * d.transpose();
                }
                // Every point strictly closer than the farthest listed one is listed
                // (all of them when the cloud has no more); a little is taken off for
                // the single precision the list was found in.
                let covered = match nn.last() {
                    Some(last) if nn.len() < points.len() => {
                        f64::from(last.0).sqrt() * (1.0 - 1e-4) - 1e-9
                    }
                    _ => f64::INFINITY,
                };
                out.push((tree.original(slot), least_spread_direction(&cov), covered));
                lists.extend(nn.iter().map(|n| n.1));
            });
            (out, lists)
        };
        let leaves = tree.leaves();
        #[cfg(feature = "rayon")]
        let by_leaf: Vec<_> = {
            use rayon::prelude::*;
            leaves
                .par_iter()
                .with_min_len(8)
                .map_init(Batch::default, of_leaf)
                .collect()
        };
        #[cfg(not(feature = "rayon"))]
        let by_leaf: Vec<_> = {
            let mut batch = Batch::default();
            leaves.iter().map(|l| of_leaf(&mut batch, l)).collect()
        };
        let mut normals = vec![Vector3::zeros(); points.len()];
        let mut covered = vec![0.0; points.len()];
        let mut lists = vec![0; points.len() * stride];
        for (out, leaf_lists) in by_leaf {
            for ((i, n, c), list) in out.into_iter().zip(leaf_lists.chunks_exact(stride)) {
                normals[i] = n;
                covered[i] = c;
                lists[i * stride..(i + 1) * stride].copy_from_slice(list);
            }
        }
        Ok(Self {
            points: points.to_vec(),
            normals,
            tree,
            neighbours: lists,
            stride,
            covered,
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
        // Matches do not depend on the order of the source points; a spatial order
        // makes each point's predecessor a good first guess of its match.
        let source = &spatially_sorted(source);
        let mut transform = *initial;
        let mut matches: Vec<(f64, usize, usize)> = Vec::with_capacity(source.len());
        let mut moved = vec![Point3::origin(); source.len()];
        // Each source point's nearest target point at the last pass (none yet).
        let mut nearest = vec![NO_MATCH; source.len()];
        let mut iterations = 0;
        let mut small_step = false;
        let mut last_rmse = f64::INFINITY;
        // Whether `matches` and `within` describe the current `transform`.
        let mut current = false;
        let mut within = 0;
        for _ in 0..config.max_iterations {
            iterations += 1;
            within = self.match_points(
                source,
                &transform,
                &limits,
                &mut moved,
                &mut nearest,
                &mut matches,
            );
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
            within = self.match_points(
                source,
                &transform,
                &limits,
                &mut moved,
                &mut nearest,
                &mut matches,
            );
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
        nearest: &mut [usize],
        matches: &mut Vec<(f64, usize, usize)>,
    ) -> usize {
        matches.clear();
        // Nothing farther than both limits matters: such a point neither matches nor
        // counts as an inlier. The bound is widened a little for single precision.
        let reach = limits.max_d2.max(limits.inlier_d2);
        let slack = |d2: f64| (d2 * (1.0 + 1e-4) + 1e-12) as f32;
        // One run of source points, in order: the source is sorted along a space-filling
        // curve, so the previous point's match is a near candidate too.
        let search_run =
            |(source, moved, nearest): (&[Point3<f64>], &mut [Point3<f64>], &mut [usize])| {
                let mut previous = NO_MATCH;
                let mut found = Vec::with_capacity(source.len());
                for ((s, p), j) in source.iter().zip(moved.iter_mut()).zip(nearest.iter_mut()) {
                    *p = transform * s;
                    // A candidate at a known distance bounds the search without losing the
                    // nearest point, which is no farther.
                    let candidate = |c: usize| {
                        self.points
                            .get(c)
                            .map_or(f64::INFINITY, |t| (*p - t).norm_squared())
                    };
                    let last = match self.walk_to_nearest(p, *j, candidate(*j)) {
                        Ok(k) => {
                            *j = k;
                            previous = k;
                            found.push((*p - self.points[k]).norm_squared());
                            continue;
                        }
                        Err(seen) => seen,
                    };
                    let bound = last.min(candidate(previous)).min(reach);
                    let q = [p.x as f32, p.y as f32, p.z as f32];
                    match self.tree.nearest_within(q, slack(bound)) {
                        Some((k, _)) => {
                            *j = k;
                            previous = k;
                            found.push((*p - self.points[k]).norm_squared());
                        }
                        None => {
                            *j = NO_MATCH;
                            found.push(f64::INFINITY);
                        }
                    }
                }
                found
            };
        const RUN: usize = 512;
        #[cfg(feature = "rayon")]
        let found: Vec<f64> = {
            use rayon::prelude::*;
            source
                .par_chunks(RUN)
                .zip(moved.par_chunks_mut(RUN))
                .zip(nearest.par_chunks_mut(RUN))
                .flat_map_iter(|((s, p), j)| search_run((s, p, j)))
                .collect()
        };
        #[cfg(not(feature = "rayon"))]
        let found: Vec<f64> = source
            .chunks(RUN)
            .zip(moved.chunks_mut(RUN))
            .zip(nearest.chunks_mut(RUN))
            .flat_map(|((s, p), j)| search_run((s, p, j)))
            .collect();
        let mut inliers = 0;
        for (i, (d2, &j)) in found.into_iter().zip(nearest.iter()).enumerate() {
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

    /// The nearest target point to `p`, found among the neighbour lists of
    /// points near it, starting at its last match `j` (at squared distance
    /// `last`), or `None` with the best squared distance seen (a bound for the
    /// tree search).
    ///
    /// At a point `c`, `√dc` from `p`, whose list's best is `√db` from `p`: any
    /// point closer to `p` than that lies within `√db + √dc` of `c`, so if that
    /// is under the radius the list covers, the best is the nearest. Otherwise the
    /// walk moves to the best and tries again, a few times.
    fn walk_to_nearest(&self, p: &Point3<f64>, j: usize, last: f64) -> Result<usize, f64> {
        let (mut at, mut at_d2) = (j, last);
        for _ in 0..WALK_HOPS {
            let Some(&covered) = self.covered.get(at) else {
                return Err(at_d2);
            };
            let mut best = (at, at_d2);
            for &k in &self.neighbours[at * self.stride..(at + 1) * self.stride] {
                let d2 = (p - self.points[k as usize]).norm_squared();
                if d2 < best.1 {
                    best = (k as usize, d2);
                }
            }
            if best.1.sqrt() + at_d2.sqrt() < covered {
                return Ok(best.0);
            }
            if best.0 == at {
                return Err(at_d2);
            }
            (at, at_d2) = best;
        }
        Err(at_d2)
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
        let rotation = UnitQuaternion::from_euler_angles(x[0], x[1], x[2]);
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

/// The unit eigenvector of a symmetric 3 × 3 matrix's smallest eigenvalue: the
/// direction in which a neighbourhood spreads least, its normal.
///
/// Closed form: the smallest eigenvalue by the trigonometric solution of the
/// characteristic cubic, the vector as the largest cross product of two rows
/// of `cov − λ I` (each row is orthogonal to it). When that eigenvalue is not
/// simple (a neighbourhood along a line, or no spread at all) the direction is
/// not defined by the data and the iterative solver picks one.
fn least_spread_direction(cov: &Matrix3<f64>) -> Vector3<f64> {
    let fallback = || {
        let eig = SymmetricEigen::new(*cov);
        let i = eig.eigenvalues.imin();
        eig.eigenvectors.column(i).into_owned()
    };
    let scale = cov.amax();
    if !(scale > 0.0 && scale.is_finite()) {
        return fallback();
    }
    let a = cov / scale;
    let off = a[(0, 1)].powi(2) + a[(0, 2)].powi(2) + a[(1, 2)].powi(2);
    let q = a.trace() / 3.0;
    let spread = (a[(0, 0)] - q).powi(2) + (a[(1, 1)] - q).powi(2) + (a[(2, 2)] - q).powi(2);
    let p = ((spread + 2.0 * off) / 6.0).sqrt();
    if p < 1e-12 {
        return fallback();
    }
    let b = (a - Matrix3::identity() * q) / p;
    let phi = (b.determinant() / 2.0).clamp(-1.0, 1.0).acos() / 3.0;
    let smallest = q + 2.0 * p * (phi + 2.0 * std::f64::consts::FRAC_PI_3).cos();
    let m = a - Matrix3::identity() * smallest;
    let (r0, r1, r2) = (
        m.row(0).transpose(),
        m.row(1).transpose(),
        m.row(2).transpose(),
    );
    let best = [r0.cross(&r1), r0.cross(&r2), r1.cross(&r2)]
        .into_iter()
        .max_by(|x, y| x.norm_squared().total_cmp(&y.norm_squared()))
        .unwrap_or_else(Vector3::zeros);
    // Rows of unit scale: a cross product this small means rank 1 (a double root).
    if best.norm_squared() < 1e-16 {
        return fallback();
    }
    best.normalize()
}

/// The points sorted along a Morton (Z-order) curve over their bounding box.
fn spatially_sorted(points: &[Point3<f64>]) -> Vec<Point3<f64>> {
    let (lo, hi) = points.iter().fold(
        (
            Vector3::repeat(f64::INFINITY),
            Vector3::repeat(f64::NEG_INFINITY),
        ),
        |(lo, hi), p| (lo.inf(&p.coords), hi.sup(&p.coords)),
    );
    let span = (hi - lo).max().max(f64::MIN_POSITIVE);
    // 10 bits per axis, interleaved.
    let spread = |v: f64| -> u64 {
        let mut x = ((v / span) * 1023.0).clamp(0.0, 1023.0) as u64;
        x = (x | (x << 16)) & 0x0300_00ff;
        x = (x | (x << 8)) & 0x0300_f00f;
        x = (x | (x << 4)) & 0x030c_30c3;
        (x | (x << 2)) & 0x0924_9249
    };
    let mut keyed: Vec<(u64, usize)> = points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let d = p.coords - lo;
            (spread(d.x) | spread(d.y) << 1 | spread(d.z) << 2, i)
        })
        .collect();
    keyed.sort_unstable();
    keyed.iter().map(|&(_, i)| points[i]).collect()
}

/// Steps of [`IcpTarget::walk_to_nearest`] before the tree search takes over.
const WALK_HOPS: usize = 4;

/// A source point with no target point within reach.
const NO_MATCH: usize = usize::MAX;

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
    fn every_match_is_the_nearest_point() {
        // Passes from a far start, then from ever closer ones: the first searches the
        // tree, the later ones mostly walk the neighbour lists. Each match must be the
        // exact nearest target point (brute force), within the limit or none.
        let target = grid_box();
        let icp_target = IcpTarget::new(&target, 10).unwrap();
        let source: Vec<_> = grid_box()
            .iter()
            .map(|p| p + Vector3::new(0.0013, -0.0007, 0.0009))
            .collect();
        let source = spatially_sorted(&source);
        let limits = MatchLimits {
            max_d2: 0.01f64.powi(2),
            inlier_d2: 0.002f64.powi(2),
            keep: 1.0,
        };
        let mut moved = vec![Point3::origin(); source.len()];
        let mut nearest = vec![NO_MATCH; source.len()];
        let mut matches = Vec::new();
        for step in [0.3, 0.1, 0.03, 0.01, 0.0] {
            let pose = Isometry3::new(
                Vector3::new(step * 0.05, 0.0, -step * 0.02),
                Vector3::new(0.0, step, step * 0.5),
            );
            icp_target.match_points(
                &source,
                &pose,
                &limits,
                &mut moved,
                &mut nearest,
                &mut matches,
            );
            let mut matched = vec![false; source.len()];
            for &(d2, i, j) in &matches {
                let best = target
                    .iter()
                    .map(|t| (moved[i] - t).norm_squared())
                    .fold(f64::INFINITY, f64::min);
                assert!(
                    (d2 - best).abs() <= 1e-12,
                    "step {step}: point {i} matched {j} at {d2}, nearest {best}"
                );
                matched[i] = true;
            }
            for (i, m) in matched.iter().enumerate() {
                if !m {
                    let best = target
                        .iter()
                        .map(|t| (moved[i] - t).norm_squared())
                        .fold(f64::INFINITY, f64::min);
                    assert!(
                        best > limits.max_d2 * (1.0 - 1e-9),
                        "step {step}: point {i} unmatched at {best}"
                    );
                }
            }
        }
    }

    #[test]
    fn least_spread_direction_matches_the_eigen_solver() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for case in 0..2000 {
            // Covariances of flat, elongated and round neighbourhoods at millimetre
            // scale, in random orientations; and a few exactly degenerate ones.
            let r = UnitQuaternion::from_scaled_axis(Vector3::new(
                rng.random_range(-3.0..3.0),
                rng.random_range(-3.0..3.0),
                rng.random_range(-3.0..3.0),
            ));
            let s: f64 = rng.random_range(1e-7..1e-5);
            let spreads = match case % 4 {
                0 => Vector3::new(s, s * rng.random_range(0.2..1.0), s * 1e-4),
                1 => Vector3::new(
                    s,
                    s * rng.random_range(0.5..1.0),
                    s * rng.random_range(0.0..0.4),
                ),
                2 => Vector3::new(s, s, s * 0.01),
                _ => Vector3::new(s, 0.0, 0.0),
            };
            let rm = r.to_rotation_matrix().into_inner();
            let cov = rm * Matrix3::from_diagonal(&spreads) * rm.transpose();
            let got = least_spread_direction(&cov);
            assert!((got.norm() - 1.0).abs() < 1e-9, "{case}: not unit");
            // Its Rayleigh quotient is the smallest eigenvalue.
            let want = SymmetricEigen::new(cov).eigenvalues.min();
            let rayleigh = got.dot(&(cov * got));
            assert!(
                (rayleigh - want).abs() <= 1e-9 * s,
                "{case}: {rayleigh} vs {want}"
            );
        }
        assert!(least_spread_direction(&Matrix3::zeros()).norm().is_finite());
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
