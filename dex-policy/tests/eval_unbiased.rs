//! `evaluate` counts a fixed share of episodes per environment: quick successes are not
//! over-counted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dex_policy::{ActMode, MockPolicy, evaluate};
use dex_sim::VecEnv;
use dex_sim::env::{BoxSpace, Env, Info, Observation, ObservationSpec, Step};

/// Even-numbered environments succeed after one step, odd ones fail after 20.
struct FastOrSlow {
    fast: bool,
    steps: usize,
    space: BoxSpace,
    spec: ObservationSpec,
}

impl Env for FastOrSlow {
    fn name(&self) -> &str {
        "fast-or-slow"
    }
    fn action_space(&self) -> &BoxSpace {
        &self.space
    }
    fn observation_spec(&self) -> &ObservationSpec {
        &self.spec
    }
    fn reset(&mut self, _seed: Option<u64>) -> dex_sim::Result<(Observation, Info)> {
        self.steps = 0;
        Ok((
            Observation {
                state: vec![0.0],
                depth: None,
            },
            Info::default(),
        ))
    }
    fn step(&mut self, _action: &[f32]) -> dex_sim::Result<Step> {
        self.steps += 1;
        let success = self.fast;
        Ok(Step {
            obs: Observation {
                state: vec![0.0],
                depth: None,
            },
            reward: 0.0,
            terminated: success,
            truncated: !success && self.steps >= 20,
            info: Info {
                success,
                ..Info::default()
            },
        })
    }
}

fn envs(n: usize) -> VecEnv {
    VecEnv::from_fn(n, |i| {
        Ok(Box::new(FastOrSlow {
            fast: i % 2 == 0,
            steps: 0,
            space: BoxSpace::uniform(1, -1.0, 1.0),
            spec: ObservationSpec {
                state: BoxSpace::uniform(1, f32::NEG_INFINITY, f32::INFINITY),
                depth: None,
            },
        }) as Box<dyn Env>)
    })
    .unwrap()
}

#[test]
fn every_environment_contributes_its_share_of_episodes() {
    let mut policy = MockPolicy::new(1, vec![0.0]);
    for (n, episodes) in [(8, 8), (8, 16), (4, 10)] {
        let r = evaluate(
            &mut policy,
            &mut envs(n),
            episodes,
            0,
            ActMode::Deterministic,
        )
        .unwrap();
        assert_eq!(r.episodes, episodes);
        // Half the environments always succeed: counting the first episodes to end
        // would report (nearly) 1.0 here.
        let fast = (0..n)
            .map(|i| episodes / n + usize::from(i < episodes % n))
            .step_by(2)
            .sum::<usize>();
        assert_eq!(
            r.success_rate,
            fast as f64 / episodes as f64,
            "n {n}, episodes {episodes}"
        );
    }
}
