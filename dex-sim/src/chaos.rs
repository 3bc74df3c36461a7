//! The chaos box: a closed box of light balls around the hand, which press on the
//! fingers at random as they move (DexNDM §3.3: how a hand collects its own dynamics
//! data under loads).

use dex_core::HandModel;
use nalgebra::{Isometry3, Point3, Translation3, Vector3};
use rand::SeedableRng;
use rand::seq::SliceRandom;

use crate::error::{Error, Result};
use crate::object::{ObjectShape, ObjectSpec};
use crate::simulator::{Enclosure, SimConfig};

/// Settings of [`chaos_box`]. The paper's box holds many light, soft balls; rapier's
/// contacts have one stiffness for the whole scene ([`SimConfig::contact_frequency`]),
/// so dex's balls are soft only in being light (10 g) and slightly bouncy-free.
#[derive(Debug, Clone, PartialEq)]
pub struct ChaosBox {
    /// Balls (DexNDM's proposal for a CPU reproduction: 30–50).
    pub balls: usize,
    /// Ball radius (m).
    pub radius: f64,
    /// Ball mass (kg).
    pub mass: f64,
    /// Ball friction coefficient.
    pub friction: f64,
    /// Space between the hand's reach and the walls (m).
    pub margin: f64,
    /// Seed of the balls' starting places.
    pub seed: u64,
}

impl Default for ChaosBox {
    fn default() -> Self {
        Self {
            balls: 40,
            radius: 0.02,
            mass: 0.01,
            friction: 0.6,
            margin: 0.01,
            seed: 0,
        }
    }
}

/// A scene: the simulation settings (with the box as [`SimConfig::enclosure`], and the
/// hand raised if the box would reach below the ground), the objects and their
/// starting poses, for [`crate::Simulator`] constructors.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    /// `config` with the enclosure set.
    pub config: SimConfig,
    /// The balls.
    pub objects: Vec<ObjectSpec>,
    /// Where they start.
    pub poses: Vec<Isometry3<f64>>,
}

/// Half the thickness (m) of the space the open hand fills along its palm normal
/// (palm and fingers, with room to spare), which no ball starts in.
const OPEN_HAND_HALF_THICKNESS: f64 = 0.035;

/// A closed box around everything `model`'s links can reach (at `config.hand_pose`,
/// over the joints' whole ranges) plus `params.margin`, and `params.balls` balls placed
/// at random on a grid above and below the open hand (clear of it along the palm
/// normal); gravity along the palm normal, either way, then settles them on the palm
/// side or the back of the fingers.
///
/// # Errors
///
/// [`Error::InvalidParameter`] for a non-positive size or mass, or more balls than
/// free places.
pub fn chaos_box(model: &HandModel, config: &SimConfig, params: &ChaosBox) -> Result<Scene> {
    let bad = |reason: String| {
        Err(Error::InvalidParameter {
            what: "chaos box",
            reason,
        })
    };
    if !(params.radius > 0.0 && params.mass > 0.0 && params.margin >= 0.0 && params.friction >= 0.0)
    {
        return bad(format!("radius and mass must be positive: {params:?}"));
    }
    // The hand's reach: link origins and fingertips over a grid of configurations.
    let limits = model.joint_limits();
    let (mut lo, mut hi) = (
        Vector3::repeat(f64::INFINITY),
        Vector3::repeat(f64::NEG_INFINITY),
    );
    for f in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let q: Vec<f64> = limits
            .iter()
            .map(|l| l.lower + f * (l.upper - l.lower))
            .collect();
        let poses = model.forward_kinematics(&q)?;
        for p in &poses {
            let w = (config.hand_pose * Point3::from(p.translation.vector)).coords;
            lo = lo.inf(&w);
            hi = hi.sup(&w);
        }
    }
    // Link origins understate the links' own size.
    let pad = 0.025;
    let (reach_lo, reach_hi) = (lo - Vector3::repeat(pad), hi + Vector3::repeat(pad));
    let mut min = reach_lo - Vector3::repeat(params.margin);
    let mut max = reach_hi + Vector3::repeat(params.margin);
    let mut hand_pose = config.hand_pose;
    let mut palm = hand_pose.translation.vector;
    let normal = hand_pose.rotation * Vector3::z();
    // As deep behind the palm as in front of it (the fingers curl one way only), so
    // that balls lie on the back of the hand when gravity turns round…
    for a in 0..3 {
        if normal[a].abs() > 0.9 {
            let half = (max[a] - palm[a]).max(palm[a] - min[a]);
            min[a] = palm[a] - half;
            max[a] = palm[a] + half;
        }
    }
    // …and the whole box above the ground (z = 0): the hand goes up with it.
    let lift = (0.005 - min.z).max(0.0);
    if lift > 0.0 {
        let up = Vector3::new(0.0, 0.0, lift);
        min += up;
        max += up;
        palm += up;
        hand_pose.translation.vector += up;
    }
    let cell = 2.0 * params.radius + 0.004;
    let count = |i: usize| (((max[i] - min[i]) / cell).floor() as usize).max(1);
    let mut free = Vec::new();
    for i in 0..count(0) {
        for j in 0..count(1) {
            for k in 0..count(2) {
                let c = Vector3::new(
                    min.x + (i as f64 + 0.5) * cell,
                    min.y + (j as f64 + 0.5) * cell,
                    min.z + (k as f64 + 0.5) * cell,
                );
                // Clear of the open hand: outside a slab along the palm normal.
                let off_palm = (c - palm).dot(&normal).abs();
                if off_palm > OPEN_HAND_HALF_THICKNESS + params.radius {
                    free.push(c);
                }
            }
        }
    }
    if free.len() < params.balls {
        return bad(format!(
            "{} balls of radius {} do not fit around the hand ({} places); raise the margin",
            params.balls,
            params.radius,
            free.len()
        ));
    }
    free.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(params.seed));
    let ball = ObjectSpec::new(
        "ball",
        ObjectShape::Sphere {
            radius: params.radius,
        },
        params.mass,
    )
    .with_friction(params.friction);
    Ok(Scene {
        config: SimConfig {
            hand_pose,
            enclosure: Some(Enclosure {
                min: Point3::from(min),
                max: Point3::from(max),
            }),
            ..config.clone()
        },
        objects: vec![ball; params.balls],
        poses: free[..params.balls]
            .iter()
            .map(|c| Isometry3::from_parts(Translation3::from(*c), Default::default()))
            .collect(),
    })
}
