//! Replay collection over drivers: what is written, the noise, and a bus fault.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dex_core::{JointLimits, JointState, JointTargets};
use dex_hw::{DriverState, HandDriver, MockDriver};
use dex_ndm::{
    DataWriter, Dataset, DynamicsModel, Error, FirstOrderPd, FitConfig, PdConfig, RandomTargets,
    ReplayConfig, SequenceSource, replay,
};

fn limits(dof: usize) -> Vec<JointLimits> {
    (0..dof)
        .map(|_| JointLimits {
            lower: -1.0,
            upper: 1.0,
            velocity: f64::INFINITY,
            effort: f64::INFINITY,
        })
        .collect()
}

fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("dex-ndm-collect-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn writer(dir: &std::path::Path, dof: usize, chunk_rows: usize) -> DataWriter {
    let names = (0..dof).map(|i| format!("j{i}")).collect();
    DataWriter::create(dir, "mock", names, 20.0, chunk_rows, toml::Table::new()).unwrap()
}

fn fast() -> ReplayConfig {
    ReplayConfig {
        rate_hz: 0.0,
        chunk_rows: 100,
        ..ReplayConfig::default()
    }
}

#[test]
fn a_replay_over_a_mock_hand_recovers_its_response() {
    let dir = tmp("mock");
    let mut w = writer(&dir, 4, 100);
    let mut driver = MockDriver::new(4);
    let mut source = RandomTargets::new(limits(4), 50, 1);
    let mut seen = 0;
    let report = replay(
        &mut driver,
        &limits(4),
        &mut source,
        430,
        &fast(),
        &mut w,
        &mut |s| seen = s,
    )
    .unwrap();
    assert_eq!((report.steps, report.segments, seen), (430, 9, 430));
    // Torque is off at the end.
    assert_eq!(driver.state, DriverState::Disabled);
    let data = Dataset::load(&dir).unwrap();
    assert_eq!((data.steps(), data.segments.len()), (430, 9));
    // The mock closes half its error per read: the first-order fit finds exactly that.
    let mut pd = FirstOrderPd::new(4, PdConfig::default()).unwrap();
    pd.fit(&data, &data, &FitConfig::default(), &mut |_| {})
        .unwrap();
    for j in pd.joints().unwrap() {
        assert!((j.gain - 0.5).abs() < 1e-3 && j.lag == 0, "{j:?}");
    }
}

/// The same targets every step.
struct Constant(usize);

impl SequenceSource for Constant {
    fn next_sequence(&mut self) -> dex_ndm::Result<Vec<Vec<f64>>> {
        Ok(vec![vec![0.25; self.0]; 40])
    }
}

#[test]
fn noise_lands_on_about_the_configured_fraction_of_steps() {
    let dir = tmp("noise");
    let mut w = writer(&dir, 3, 1000);
    let mut driver = MockDriver::new(3);
    let config = ReplayConfig {
        blend_steps: 0,
        ..fast()
    };
    replay(
        &mut driver,
        &limits(3),
        &mut Constant(3),
        2000,
        &config,
        &mut w,
        &mut |_| {},
    )
    .unwrap();
    let noisy = driver
        .targets
        .iter()
        .filter(|t| t.iter().any(|v| *v != 0.25))
        .count() as f64
        / driver.targets.len() as f64;
    assert!((0.45..0.55).contains(&noisy), "{noisy}");
    let big = driver
        .targets
        .iter()
        .flatten()
        .map(|v| (v - 0.25).abs())
        .fold(0.0f64, f64::max);
    // σ = 0.01 half-ranges = 0.01 rad here: nothing near 0.1 rad.
    assert!(big > 0.0 && big < 0.06, "{big}");
    let quiet = ReplayConfig {
        noise_std: 0.0,
        ..config
    };
    let mut driver = MockDriver::new(3);
    let mut w = writer(&tmp("quiet"), 3, 1000);
    replay(
        &mut driver,
        &limits(3),
        &mut Constant(3),
        100,
        &quiet,
        &mut w,
        &mut |_| {},
    )
    .unwrap();
    assert!(driver.targets.iter().flatten().all(|v| *v == 0.25));
}

/// A mock hand whose bus fails at the `fail_at`-th read.
struct Flaky {
    inner: MockDriver,
    reads: usize,
    fail_at: usize,
}

impl HandDriver for Flaky {
    fn joint_names(&self) -> Vec<String> {
        self.inner.joint_names()
    }
    fn state(&self) -> DriverState {
        self.inner.state()
    }
    fn configure(&mut self) -> dex_hw::Result<()> {
        self.inner.configure()
    }
    fn enable(&mut self) -> dex_hw::Result<()> {
        self.inner.enable()
    }
    fn read_state(&mut self) -> dex_hw::Result<JointState> {
        self.reads += 1;
        self.inner.fail_next_read = self.reads == self.fail_at;
        self.inner.read_state()
    }
    fn write_targets(&mut self, targets: &JointTargets) -> dex_hw::Result<()> {
        self.inner.write_targets(targets)
    }
    fn disable(&mut self) -> dex_hw::Result<()> {
        self.inner.disable()
    }
}

#[test]
fn a_bus_fault_turns_torque_off_and_keeps_what_was_written() {
    let dir = tmp("fault");
    let mut w = writer(&dir, 2, 100);
    let mut driver = Flaky {
        inner: MockDriver::new(2),
        reads: 0,
        fail_at: 275,
    };
    let mut source = RandomTargets::new(limits(2), 50, 3);
    let err = replay(
        &mut driver,
        &limits(2),
        &mut source,
        1000,
        &fast(),
        &mut w,
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::Hardware(dex_hw::Error::Timeout { .. })),
        "{err}"
    );
    assert!(!driver.inner.torque_on());
    assert_eq!(driver.state(), DriverState::Faulted);
    // Five whole segments (250 steps) were done before the fault: all on disk.
    let data = Dataset::load(&dir).unwrap();
    assert_eq!((data.segments.len(), data.steps()), (5, 250));
}

#[test]
fn mismatched_limits_are_refused_before_the_hand_moves() {
    let dir = tmp("mismatch");
    let mut w = writer(&dir, 2, 100);
    let mut driver = MockDriver::new(2);
    let mut source = RandomTargets::new(limits(3), 50, 3);
    let err = replay(
        &mut driver,
        &limits(3),
        &mut source,
        10,
        &fast(),
        &mut w,
        &mut |_| {},
    )
    .unwrap_err();
    assert!(matches!(err, Error::LengthMismatch { .. }), "{err}");
    assert_eq!(driver.enable_calls, 0);
}
