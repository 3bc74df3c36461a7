//! A tiny deterministic task for the trainers' tests.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use dex_sim::VecEnv;
use dex_sim::env::{BoxSpace, Env, Info, Observation, ObservationSpec, Step};
use rand::{Rng, SeedableRng};

/// A point on a line must move to a target: obs [x, target], action = velocity.
pub struct PointEnv {
    x: f32,
    target: f32,
    steps: usize,
    rng: rand_chacha::ChaCha8Rng,
    action_space: BoxSpace,
    spec: ObservationSpec,
    privileged: bool,
    image: bool,
}

/// Side of [`PointEnv::with_image`]'s image.
pub const IMAGE_SIDE: usize = 4;

impl PointEnv {
    pub fn new() -> Self {
        Self::with_privileged(false)
    }

    /// With `privileged`, the observation also holds `target − x` (what a teacher uses).
    pub fn with_privileged(privileged: bool) -> Self {
        Self {
            x: 0.0,
            target: 0.0,
            steps: 0,
            rng: rand_chacha::ChaCha8Rng::seed_from_u64(0),
            action_space: BoxSpace::uniform(1, -1.0, 1.0),
            spec: ObservationSpec {
                state: BoxSpace::uniform(
                    2 + usize::from(privileged),
                    f32::NEG_INFINITY,
                    f32::INFINITY,
                ),
                depth: None,
            },
            privileged,
            image: false,
        }
    }

    /// The target seen only in a `4 × 4` image after `x`: pixel `(r, c)` is
    /// `(target + 1)/2 · (c + 1)/4`.
    pub fn with_image() -> Self {
        let mut env = Self::new();
        env.image = true;
        env.spec = ObservationSpec {
            state: BoxSpace::uniform(
                1 + IMAGE_SIDE * IMAGE_SIDE,
                f32::NEG_INFINITY,
                f32::INFINITY,
            ),
            depth: Some((IMAGE_SIDE, IMAGE_SIDE)),
        };
        env
    }

    fn obs(&self) -> Observation {
        if self.image {
            let level = (self.target + 1.0) / 2.0;
            let mut state = vec![self.x];
            for _ in 0..IMAGE_SIDE {
                state.extend((0..IMAGE_SIDE).map(|c| level * (c + 1) as f32 / IMAGE_SIDE as f32));
            }
            return Observation { state, depth: None };
        }
        let mut state = vec![self.x, self.target];
        if self.privileged {
            state.push(self.target - self.x);
        }
        Observation { state, depth: None }
    }
}

impl Env for PointEnv {
    fn name(&self) -> &str {
        "point"
    }
    fn action_space(&self) -> &BoxSpace {
        &self.action_space
    }
    fn observation_spec(&self) -> &ObservationSpec {
        &self.spec
    }
    fn reset(&mut self, seed: Option<u64>) -> dex_sim::Result<(Observation, Info)> {
        if let Some(s) = seed {
            self.rng = rand_chacha::ChaCha8Rng::seed_from_u64(s);
        }
        self.x = self.rng.random_range(-1.0..1.0);
        self.target = self.rng.random_range(-1.0..1.0);
        self.steps = 0;
        Ok((self.obs(), Info::default()))
    }
    fn step(&mut self, action: &[f32]) -> dex_sim::Result<Step> {
        self.x += 0.2 * action[0];
        self.steps += 1;
        let d = (self.x - self.target).abs();
        let success = d < 0.05;
        let info = Info {
            success,
            ..Info::default()
        };
        Ok(Step {
            obs: self.obs(),
            reward: f64::from(-d) + if success { 5.0 } else { 0.0 },
            terminated: success,
            truncated: self.steps >= 20 && !success,
            info,
        })
    }
}

pub fn point_envs(n: usize) -> VecEnv {
    VecEnv::from_fn(n, |_| Ok(Box::new(PointEnv::new()) as Box<dyn Env>)).unwrap()
}

/// Point envs whose observation is `[x, target, target − x]`.
pub fn privileged_point_envs(n: usize) -> VecEnv {
    VecEnv::from_fn(n, |_| {
        Ok(Box::new(PointEnv::with_privileged(true)) as Box<dyn Env>)
    })
    .unwrap()
}

/// Point envs that see the target only in an image.
pub fn image_point_envs(n: usize) -> VecEnv {
    VecEnv::from_fn(n, |_| Ok(Box::new(PointEnv::with_image()) as Box<dyn Env>)).unwrap()
}
