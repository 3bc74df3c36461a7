//! Rotation over a driver: the rotation and time to fall are counted as the task counts
//! them, from what tracks the object.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::Cell;

use dex_core::HandModel;
use dex_hw::MockDriver;
use dex_ndm::{ObjectScene, RotateEpisode, rotate_over_driver};
use dex_policy::MockPolicy;
use dex_sim::{ObjectState, Proprioception, TaskConfig};
use nalgebra::{Isometry3, Translation3, UnitQuaternion, Vector3};

/// An object spinning at `spin` rad/s about z that jumps `jump` m away on the
/// `drop_after`-th look after it was placed.
struct Spinning {
    spin: f64,
    jump: f64,
    drop_after: usize,
    looks: Cell<usize>,
    placed: Cell<Option<Isometry3<f64>>>,
}

impl ObjectScene for Spinning {
    fn hand_pose(&self) -> dex_ndm::Result<Isometry3<f64>> {
        Ok(Isometry3::identity())
    }

    fn place_object(&mut self, pose: &Isometry3<f64>) -> dex_ndm::Result<()> {
        self.placed.set(Some(*pose));
        self.looks.set(0);
        Ok(())
    }

    fn object_state(&self) -> dex_ndm::Result<ObjectState> {
        let n = self.looks.get() + 1;
        self.looks.set(n);
        let mut pose = self.placed.get().expect("placed before it is looked at");
        if n > self.drop_after {
            pose.translation.vector.x += self.jump;
        }
        Ok(ObjectState {
            pose,
            linear_velocity: Vector3::zeros(),
            angular_velocity: Vector3::new(0.0, 0.3, self.spin),
        })
    }
}

fn episodes(n: usize, model: &HandModel) -> Vec<RotateEpisode> {
    (0..n)
        .map(|i| RotateEpisode {
            object: Isometry3::from_parts(
                Translation3::new(0.0, 0.0, 0.05),
                UnitQuaternion::from_axis_angle(&Vector3::z_axis(), i as f64),
            ),
            start: vec![0.1; model.dof()],
        })
        .collect()
}

fn policy(model: &HandModel, task: &TaskConfig) -> MockPolicy {
    let proprio = Proprioception::new(model, task.history).unwrap().dim();
    // Object pose (7), angular velocity (3), fingertips (3 each), axis (3).
    let dim = proprio + 7 + 3 + 3 * model.fingertips().len() + 3;
    MockPolicy::new(dim, vec![0.0; model.dof()])
}

#[test]
fn rotation_is_integrated_about_the_axis_over_whole_episodes() {
    let model = HandModel::leap_right();
    let task = TaskConfig {
        episode_steps: 40,
        ..TaskConfig::default()
    };
    let mut scene = Spinning {
        spin: 0.5,
        jump: 0.0,
        drop_after: usize::MAX,
        looks: Cell::new(0),
        placed: Cell::new(None),
    };
    let mut driver = MockDriver::new(model.dof());
    let mut p = policy(&model, &task);
    let r = rotate_over_driver(
        &mut driver,
        &mut scene,
        &model,
        &task,
        &Vector3::z(),
        &mut p,
        &episodes(3, &model),
        0.0,
    )
    .unwrap();
    let period = task.dt * task.substeps as f64;
    assert_eq!((r.episodes, r.drops), (3, 0));
    // Only the component along the axis counts (the 0.3 rad/s about y does not).
    assert!(
        (r.mean_rotation - 0.5 * 40.0 * period).abs() < 1e-9,
        "{r:?}"
    );
    assert!((r.mean_time_to_fall - 40.0 * period).abs() < 1e-9);
    assert_eq!(p.calls, 3 * 40, "one action per control step");
    assert_eq!(p.resets, vec![0, 0, 0], "reset at every episode");
}

#[test]
fn a_drop_ends_the_episode_and_sets_the_time_to_fall() {
    let model = HandModel::leap_right();
    let task = TaskConfig {
        episode_steps: 40,
        ..TaskConfig::default()
    };
    // Looked at once when the episode starts, then twice per step: the jump is seen at
    // the check of step 10.
    let mut scene = Spinning {
        spin: -1.0,
        jump: task.rotate.drop_distance + 0.01,
        drop_after: 1 + 2 * 10,
        looks: Cell::new(0),
        placed: Cell::new(None),
    };
    let mut driver = MockDriver::new(model.dof());
    let mut p = policy(&model, &task);
    let r = rotate_over_driver(
        &mut driver,
        &mut scene,
        &model,
        &task,
        &Vector3::new(0.0, 0.0, 2.0),
        &mut p,
        &episodes(2, &model),
        0.0,
    )
    .unwrap();
    let period = task.dt * task.substeps as f64;
    assert_eq!(r.drops, 2);
    assert!((r.mean_time_to_fall - 10.0 * period).abs() < 1e-9, "{r:?}");
    assert!((r.mean_rotation + 10.0 * period).abs() < 1e-9, "{r:?}");
    assert!(!driver.torque_on(), "the driver is disabled at the end");

    // A policy of another width is refused before the hand moves.
    let mut wrong = MockPolicy::new(3, vec![0.0; model.dof()]);
    let err = rotate_over_driver(
        &mut driver,
        &mut scene,
        &model,
        &task,
        &Vector3::z(),
        &mut wrong,
        &episodes(1, &model),
        0.0,
    )
    .unwrap_err();
    assert!(
        matches!(err, dex_ndm::Error::LengthMismatch { .. }),
        "{err}"
    );
}
