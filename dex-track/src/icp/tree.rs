//! A 3-D k-d tree shaped for ICP's queries: one nearest neighbour under a
//! distance bound (the correspondence limit, or the distance to a known
//! candidate, which is usually tight), and the k nearest for normals.
//!
//! Points are stored in leaf order (single precision; ICP recomputes distances
//! in double precision) and split on the widest axis at the median. Every node
//! keeps the tight bounding box of its points rather than its cell: on a
//! sampled surface a box is thin where the cell is not, so a search skips far
//! more subtrees than the classic cell bound lets it.

/// Points per leaf at most.
const LEAF: usize = 24;

/// A node: the bounding box of its points, and either its two children (the
/// left one right after it in `nodes`, the right one at `right`) or, for a leaf
/// (`right == 0`: the root is no one's child), its range of stored points.
#[derive(Debug, Clone, Copy)]
struct Node {
    lo: [f32; 3],
    hi: [f32; 3],
    right: u32,
    start: u32,
    end: u32,
}

impl Node {
    /// Squared distance from `q` to the box (0 inside).
    #[inline]
    fn distance2(&self, q: &[f32; 3]) -> f32 {
        box_gap2(&self.lo, &self.hi, q, q)
    }
}

/// The tree.
#[derive(Debug, Clone)]
pub(super) struct PointTree {
    nodes: Vec<Node>,
    points: Vec<[f32; 3]>,
    /// The same points by coordinate (x, y, z), for leaf scans that vectorise.
    axes: [Vec<f32>; 3],
    /// Index into the caller's slice of each stored point.
    index: Vec<u32>,
}

impl PointTree {
    /// Builds the tree over `points` (at least one; at most `u32::MAX`).
    pub(super) fn new(points: &[[f32; 3]]) -> Self {
        let mut order: Vec<u32> = (0..points.len() as u32).collect();
        let mut nodes = Vec::with_capacity(4 * points.len() / LEAF + 1);
        build(points, &mut order, 0, &mut nodes);
        let stored: Vec<[f32; 3]> = order.iter().map(|&i| points[i as usize]).collect();
        let axes = [0, 1, 2].map(|a| stored.iter().map(|p| p[a]).collect());
        Self {
            nodes,
            points: stored,
            axes,
            index: order,
        }
    }

    /// The index in the caller's slice of the point stored at `slot` (slots run
    /// in leaf order: neighbouring slots are near each other in space).
    pub(super) fn original(&self, slot: usize) -> usize {
        self.index[slot] as usize
    }

    /// The nearest point strictly closer than `sqrt(bound2)`: its index in the
    /// slice the tree was built from and its squared distance (single precision).
    pub(super) fn nearest_within(&self, q: [f32; 3], bound2: f32) -> Option<(usize, f32)> {
        let mut best = (u32::MAX, bound2);
        if self.nodes[0].distance2(&q) < bound2 {
            self.nearest_from(0, &q, &mut best);
        }
        (best.0 != u32::MAX).then(|| (self.index[best.0 as usize] as usize, best.1))
    }

    fn nearest_from(&self, node: usize, q: &[f32; 3], best: &mut (u32, f32)) {
        let n = &self.nodes[node];
        if n.right == 0 {
            let (start, end) = (n.start as usize, n.end as usize);
            let mut d2s = [f32::INFINITY; LEAF];
            let (xs, ys, zs) = (
                &self.axes[0][start..end],
                &self.axes[1][start..end],
                &self.axes[2][start..end],
            );
            for (d2, ((x, y), z)) in d2s.iter_mut().zip(xs.iter().zip(ys).zip(zs)) {
                let (dx, dy, dz) = (x - q[0], y - q[1], z - q[2]);
                *d2 = dx * dx + dy * dy + dz * dz;
            }
            // The smallest first (branch-free, vectorised); its position only when it
            // improves on the best.
            let least = d2s.iter().fold(f32::INFINITY, |m, &d| m.min(d));
            if least < best.1
                && let Some(k) = d2s.iter().position(|&d| d == least)
            {
                *best = ((start + k) as u32, least);
            }
            return;
        }
        let (left, right) = (node + 1, n.right as usize);
        let (dl, dr) = (
            self.nodes[left].distance2(q),
            self.nodes[right].distance2(q),
        );
        let ((near, dn), (far, df)) = if dl <= dr {
            ((left, dl), (right, dr))
        } else {
            ((right, dr), (left, dl))
        };
        if dn < best.1 {
            self.nearest_from(near, q, best);
        }
        if df < best.1 {
            self.nearest_from(far, q, best);
        }
    }

    /// Appends to `out` the slots of the points under `node` strictly closer
    /// than `sqrt(reach2)` to the box `[lo, hi]`.
    fn gather(&self, node: usize, lo: &[f32; 3], hi: &[f32; 3], reach2: f32, out: &mut Vec<u32>) {
        let n = &self.nodes[node];
        if box_gap2(&n.lo, &n.hi, lo, hi) >= reach2 {
            return;
        }
        if n.right == 0 {
            for slot in n.start..n.end {
                let p = &self.points[slot as usize];
                if box_gap2(p, p, lo, hi) < reach2 {
                    out.push(slot);
                }
            }
            return;
        }
        self.gather(node + 1, lo, hi, reach2, out);
        self.gather(n.right as usize, lo, hi, reach2, out);
    }

    /// Leaves' ranges of slots, in storage order.
    pub(super) fn leaves(&self) -> Vec<std::ops::Range<usize>> {
        self.nodes
            .iter()
            .filter(|n| n.right == 0)
            .map(|n| n.start as usize..n.end as usize)
            .collect()
    }

    /// The `k` nearest points to each point stored in `slots` (itself included),
    /// handed to `f` with the slot as [`Self::nearest_k`] gives them. Each
    /// point's search is bounded by the `k`-th nearest of the points stored
    /// around it, and the points within the largest bound of the run's box are
    /// gathered once for the whole run.
    pub(super) fn nearest_k_of_slots(
        &self,
        slots: std::ops::Range<usize>,
        k: usize,
        batch: &mut Batch,
        mut f: impl FnMut(usize, &[(f32, u32)]),
    ) {
        let mut found = Vec::with_capacity(4 * k + 2);
        if k == 0 {
            for slot in slots {
                f(slot, &[]);
            }
            return;
        }
        let bounds: Vec<f32> = slots
            .clone()
            .map(|slot| {
                let q = self.points[slot];
                let lo = slot.saturating_sub(k);
                let hi = (slot + k + 1).min(self.points.len());
                found.clear();
                found.extend(self.points[lo..hi].iter().map(|p| (dist2(p, &q), 0)));
                if found.len() >= k {
                    let (_, kth, _) =
                        found.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0));
                    // Widened a little so that ties at the k-th distance are kept.
                    kth.0 * (1.0 + 1e-5) + f32::MIN_POSITIVE
                } else {
                    f32::INFINITY
                }
            })
            .collect();
        let reach = bounds.iter().fold(0.0f32, |m, &b| m.max(b));
        let (lo, hi) = bounding_box(&self.points[slots.clone()]);
        batch.slots.clear();
        if reach.is_finite() {
            self.gather(0, &lo, &hi, reach, &mut batch.slots);
        } else {
            batch.slots.extend(0..self.points.len() as u32);
        }
        batch.load(&self.points);
        for (slot, &bound) in slots.zip(&bounds) {
            batch.distances(&self.points[slot]);
            let d2s = &batch.d2s;
            found.clear();
            found.extend(
                d2s.iter()
                    .zip(&batch.slots)
                    .filter(|(d, _)| **d < bound)
                    .map(|(&d, &s)| (d, s)),
            );
            if found.len() > k {
                found.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0));
                found.truncate(k);
            }
            found.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
            for e in found.iter_mut() {
                e.1 = self.index[e.1 as usize];
            }
            f(slot, &found);
        }
    }
}

/// Scratch space of batched queries: the gathered slots and their coordinates.
#[derive(Debug, Default)]
pub(super) struct Batch {
    slots: Vec<u32>,
    axes: [Vec<f32>; 3],
    d2s: Vec<f32>,
}

impl Batch {
    /// Copies the gathered points' coordinates into `axes`.
    fn load(&mut self, points: &[[f32; 3]]) {
        for (a, axis) in self.axes.iter_mut().enumerate() {
            axis.clear();
            axis.extend(self.slots.iter().map(|&s| points[s as usize][a]));
        }
    }

    /// Squared distances from `q` to the gathered points (vectorised).
    fn distances(&mut self, q: &[f32; 3]) {
        self.d2s.clear();
        let [xs, ys, zs] = &self.axes;
        self.d2s
            .extend(xs.iter().zip(ys).zip(zs).map(|((x, y), z)| {
                let (dx, dy, dz) = (x - q[0], y - q[1], z - q[2]);
                dx * dx + dy * dy + dz * dz
            }));
    }
}

/// The bounding box of `points` (empty: an inverted box).
fn bounding_box<'a>(points: impl IntoIterator<Item = &'a [f32; 3]>) -> ([f32; 3], [f32; 3]) {
    let mut lo = [f32::INFINITY; 3];
    let mut hi = [f32::NEG_INFINITY; 3];
    for p in points {
        for a in 0..3 {
            lo[a] = lo[a].min(p[a]);
            hi[a] = hi[a].max(p[a]);
        }
    }
    (lo, hi)
}

/// Squared gap between the boxes `[alo, ahi]` and `[blo, bhi]` (0 if they meet).
#[inline]
fn box_gap2(alo: &[f32; 3], ahi: &[f32; 3], blo: &[f32; 3], bhi: &[f32; 3]) -> f32 {
    let mut d2 = 0.0;
    for a in 0..3 {
        let d = (alo[a] - bhi[a]).max(blo[a] - ahi[a]).max(0.0);
        d2 += d * d;
    }
    d2
}

fn dist2(p: &[f32; 3], q: &[f32; 3]) -> f32 {
    let (dx, dy, dz) = (p[0] - q[0], p[1] - q[1], p[2] - q[2]);
    dx * dx + dy * dy + dz * dz
}

/// Appends the subtree over `order` (whose first point is stored at `offset`)
/// to `nodes` in preorder.
fn build(points: &[[f32; 3]], order: &mut [u32], offset: u32, nodes: &mut Vec<Node>) {
    let n = order.len();
    let (lo, hi) = bounding_box(order.iter().map(|&i| &points[i as usize]));
    let at = nodes.len();
    nodes.push(Node {
        lo,
        hi,
        right: 0,
        start: offset,
        end: offset + n as u32,
    });
    if n <= LEAF {
        return;
    }
    let axis = (0..3)
        .max_by(|&a, &b| (hi[a] - lo[a]).total_cmp(&(hi[b] - lo[b])))
        .unwrap_or(0);
    let mid = n / 2;
    order.select_nth_unstable_by(mid, |&i, &j| {
        points[i as usize][axis].total_cmp(&points[j as usize][axis])
    });
    let (left, rightpart) = order.split_at_mut(mid);
    build(points, left, offset, nodes);
    nodes[at].right = nodes.len() as u32;
    build(points, rightpart, offset + mid as u32, nodes);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use rand::{Rng, SeedableRng};

    fn brute(points: &[[f32; 3]], q: [f32; 3]) -> Vec<(f32, u32)> {
        let mut all: Vec<(f32, u32)> = points
            .iter()
            .enumerate()
            .map(|(i, p)| (dist2(p, &q), i as u32))
            .collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        all
    }

    fn cloud(n: usize, seed: u64) -> Vec<[f32; 3]> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        // Half the points on a plane (ties along z), half in a cube.
        (0..n)
            .map(|i| {
                let x = rng.random_range(-1.0..1.0);
                let y = rng.random_range(-1.0..1.0);
                let z = if i % 2 == 0 {
                    0.25
                } else {
                    rng.random_range(-1.0..1.0)
                };
                [x, y, z]
            })
            .collect()
    }

    #[test]
    fn nearest_matches_brute_force() {
        let points = cloud(700, 1);
        let tree = PointTree::new(&points);
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        for _ in 0..500 {
            let q = [
                rng.random_range(-1.2..1.2),
                rng.random_range(-1.2..1.2),
                rng.random_range(-1.2..1.2),
            ];
            let truth = brute(&points, q);
            let (i, d2) = tree.nearest_within(q, f32::INFINITY).unwrap();
            assert_eq!(d2, truth[0].0);
            assert_eq!(dist2(&points[i], &q), truth[0].0);
            // A bound at the nearest distance excludes it (strict); just above keeps it.
            assert!(tree.nearest_within(q, truth[0].0).is_none() || truth[1].0 < truth[0].0);
            assert_eq!(
                tree.nearest_within(q, truth[0].0 * 1.01 + 1e-9).unwrap().1,
                truth[0].0
            );
        }
    }

    #[test]
    fn neighbourhoods_by_leaf_match_brute_force() {
        let points = cloud(900, 4);
        let tree = PointTree::new(&points);
        let mut batch = Batch::default();
        let mut seen = vec![false; points.len()];
        for k in [1, 10, 40] {
            for leaf in tree.leaves() {
                tree.nearest_k_of_slots(leaf, k, &mut batch, |slot, found| {
                    let i = tree.original(slot);
                    seen[i] = true;
                    let truth = brute(&points, points[i]);
                    let want: Vec<f32> = truth[..k].iter().map(|e| e.0).collect();
                    let got: Vec<f32> = found.iter().map(|e| e.0).collect();
                    assert_eq!(got, want, "slot {slot}, k {k}");
                    for e in found {
                        assert_eq!(dist2(&points[e.1 as usize], &points[i]), e.0);
                    }
                });
            }
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn small_and_degenerate_clouds() {
        let one = PointTree::new(&[[1.0, 2.0, 3.0]]);
        assert_eq!(one.nearest_within([0.0; 3], f32::INFINITY).unwrap().0, 0);
        let mut batch = Batch::default();
        let mut count = 0;
        one.nearest_k_of_slots(0..1, 5, &mut batch, |_, found| count = found.len());
        assert_eq!(count, 1);
        // Every point identical: any of them is a nearest neighbour.
        let same = vec![[0.5f32; 3]; 100];
        let tree = PointTree::new(&same);
        assert_eq!(tree.nearest_within([0.5; 3], 1.0).unwrap().1, 0.0);
        for leaf in tree.leaves() {
            tree.nearest_k_of_slots(leaf, 10, &mut batch, |_, found| {
                assert_eq!(found.len(), 10);
                assert!(found.iter().all(|e| e.0 == 0.0));
            });
        }
    }
}
