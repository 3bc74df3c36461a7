//! Safety wrappers: every one is a [`HandDriver`] around another, so they stack.
//!
//! - [`SafetyLimits`]: joint limits (refuse by default, clamp if configured) and
//!   a maximum change per tick; NaN and infinite targets are always refused.
//! - [`StallGuard`]: turns torque off from a watchdog thread when the control
//!   loop stops calling for longer than a set time.
//!
//! The servo-side protections (the Goal Current cap, the servo Bus Watchdog) are
//! settings of the driver itself ([`crate::LeapConfig`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dex_core::{HandModel, JointState, JointTargets};

use crate::driver::{DriverState, HandDriver, check_targets};
use crate::error::{Error, Result};

/// What to do with a target outside the limits or a step larger than allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LimitPolicy {
    /// Refuse the whole command with an error; nothing is sent.
    #[default]
    Reject,
    /// Clamp the offending values, send, and count the event.
    Clamp,
}

/// Limits enforced by [`SafetyLimits`].
#[derive(Debug, Clone, PartialEq)]
pub struct SafetyConfig {
    /// Position limits (rad) per joint.
    pub limits: Vec<(f64, f64)>,
    /// Largest change of a joint's target from one tick to the next (rad); `None` = no limit.
    pub max_step: Option<f64>,
    /// What to do on a violation.
    pub policy: LimitPolicy,
}

impl SafetyConfig {
    /// The model's joint limits, refusing violations, with a per-tick step limit.
    pub fn from_model(model: &HandModel, max_step: Option<f64>) -> Self {
        Self {
            limits: model
                .joint_limits()
                .iter()
                .map(|l| (l.lower, l.upper))
                .collect(),
            max_step,
            policy: LimitPolicy::Reject,
        }
    }
}

/// Counts of what the safety layer did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SafetyEvents {
    /// Commands refused (limits, steps, NaN, wrong length).
    pub rejected: u64,
    /// Values clamped into the limits.
    pub clamped: u64,
    /// Values whose step was shortened.
    pub step_limited: u64,
}

/// A driver whose targets are checked against limits before they reach the bus.
#[derive(Debug)]
pub struct SafetyLimits<D: HandDriver> {
    inner: D,
    config: SafetyConfig,
    names: Vec<String>,
    last: Option<Vec<f64>>,
    events: SafetyEvents,
}

impl<D: HandDriver> SafetyLimits<D> {
    /// Wraps `inner`.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] if the limits do not have one entry per joint,
    /// [`Error::InvalidArgument`] for reversed limits or a non-positive step.
    pub fn new(inner: D, config: SafetyConfig) -> Result<Self> {
        let names = inner.joint_names();
        if config.limits.len() != names.len() {
            return Err(Error::LengthMismatch {
                what: "safety limits",
                expected: names.len(),
                got: config.limits.len(),
            });
        }
        if let Some((i, _)) = config
            .limits
            .iter()
            .enumerate()
            .find(|(_, (lo, hi))| lo.is_nan() || hi.is_nan() || lo > hi)
        {
            return Err(Error::InvalidArgument {
                message: format!("limits of joint `{}` are reversed or NaN", names[i]),
            });
        }
        if let Some(s) = config.max_step
            && (s.is_nan() || s <= 0.0)
        {
            return Err(Error::InvalidArgument {
                message: format!("max step must be positive, got {s}"),
            });
        }
        Ok(Self {
            inner,
            config,
            names,
            last: None,
            events: SafetyEvents::default(),
        })
    }

    /// The wrapped driver.
    pub fn get_ref(&self) -> &D {
        &self.inner
    }

    /// The wrapped driver, mutable (bypasses the checks: use with care).
    pub fn get_mut(&mut self) -> &mut D {
        &mut self.inner
    }

    /// Unwraps.
    pub fn into_inner(self) -> D {
        self.inner
    }

    /// What the layer has done so far.
    pub fn events(&self) -> SafetyEvents {
        self.events
    }

    /// The checked (and, under [`LimitPolicy::Clamp`], corrected) targets.
    fn check(&mut self, targets: &JointTargets) -> Result<Vec<f64>> {
        check_targets(&self.names, targets)?;
        let mut q = targets.q.clone();
        let clamp = self.config.policy == LimitPolicy::Clamp;
        for (i, v) in q.iter_mut().enumerate() {
            let (lo, hi) = self.config.limits[i];
            if *v < lo || *v > hi {
                if !clamp {
                    return Err(Error::OutOfLimits {
                        joint: self.names[i].clone(),
                        value: *v,
                        lower: lo,
                        upper: hi,
                    });
                }
                *v = v.clamp(lo, hi);
                self.events.clamped += 1;
            }
        }
        if let (Some(max), Some(last)) = (self.config.max_step, &self.last) {
            for (i, v) in q.iter_mut().enumerate() {
                let step = *v - last[i];
                if step.abs() > max {
                    if !clamp {
                        return Err(Error::StepTooLarge {
                            joint: self.names[i].clone(),
                            step,
                            max,
                        });
                    }
                    *v = last[i] + max.copysign(step);
                    self.events.step_limited += 1;
                }
            }
        }
        Ok(q)
    }
}

impl<D: HandDriver> HandDriver for SafetyLimits<D> {
    fn joint_names(&self) -> Vec<String> {
        self.names.clone()
    }
    fn dof(&self) -> usize {
        self.names.len()
    }
    fn state(&self) -> DriverState {
        self.inner.state()
    }
    fn configure(&mut self) -> Result<()> {
        self.last = None;
        self.inner.configure()
    }
    fn enable(&mut self) -> Result<()> {
        self.inner.enable()?;
        // Steps are measured from the pose the hand holds when torque comes on.
        self.last = Some(self.inner.read_state()?.q);
        Ok(())
    }
    fn read_state(&mut self) -> Result<JointState> {
        self.inner.read_state()
    }
    fn write_targets(&mut self, targets: &JointTargets) -> Result<()> {
        let q = match self.check(targets) {
            Ok(q) => q,
            Err(e) => {
                self.events.rejected += 1;
                return Err(e);
            }
        };
        let checked = JointTargets::new(q);
        self.inner.write_targets(&checked)?;
        self.last = Some(checked.q);
        Ok(())
    }
    fn disable(&mut self) -> Result<()> {
        self.inner.disable()
    }
}

/// A driver shared with a watchdog thread that turns torque off when no command
/// arrives for longer than `limit` while torque is on.
///
/// After a trip, commands fail with [`Error::Stalled`] until `enable` is called
/// again.
pub struct StallGuard<D: HandDriver + 'static> {
    inner: Arc<Mutex<D>>,
    heartbeat: Arc<Mutex<Instant>>,
    tripped: Arc<Mutex<Option<Duration>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    limit: Duration,
    names: Vec<String>,
}

impl<D: HandDriver + 'static> std::fmt::Debug for StallGuard<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StallGuard")
            .field("limit", &self.limit)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<D: HandDriver + 'static> StallGuard<D> {
    /// Wraps `inner`, checking every `limit / 4`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a zero limit, [`Error::Io`] if the thread cannot start.
    pub fn new(inner: D, limit: Duration) -> Result<Self> {
        if limit.is_zero() {
            return Err(Error::InvalidArgument {
                message: "stall limit must be positive".into(),
            });
        }
        let names = inner.joint_names();
        let inner = Arc::new(Mutex::new(inner));
        let heartbeat = Arc::new(Mutex::new(Instant::now()));
        let tripped = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (inner, heartbeat, tripped, stop) = (
                Arc::clone(&inner),
                Arc::clone(&heartbeat),
                Arc::clone(&tripped),
                Arc::clone(&stop),
            );
            std::thread::Builder::new()
                .name("dex-stall-guard".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(limit / 4);
                        let elapsed = lock(&heartbeat).elapsed();
                        if elapsed > limit {
                            let mut d = lock(&inner);
                            if d.state() == DriverState::Enabled {
                                if let Err(e) = d.disable() {
                                    tracing::error!("stall guard: torque off failed: {e}");
                                }
                                *lock(&tripped) = Some(elapsed);
                                tracing::warn!(
                                    "stall guard: no command for {elapsed:?}, torque off"
                                );
                            }
                        }
                    }
                })
                .map_err(|e| Error::io("cannot start the stall guard", e))?
        };
        Ok(Self {
            inner,
            heartbeat,
            tripped,
            stop,
            thread: Some(thread),
            limit,
            names,
        })
    }

    /// The configured limit.
    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// Whether the guard has turned torque off since the last `enable`.
    pub fn tripped(&self) -> bool {
        lock(&self.tripped).is_some()
    }

    /// The wrapped driver, locked.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, D> {
        lock(&self.inner)
    }

    fn beat(&self) {
        *lock(&self.heartbeat) = Instant::now();
    }

    fn check_tripped(&self) -> Result<()> {
        match *lock(&self.tripped) {
            Some(elapsed) => Err(Error::Stalled {
                elapsed,
                limit: self.limit,
            }),
            None => Ok(()),
        }
    }
}

impl<D: HandDriver + 'static> Drop for StallGuard<D> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl<D: HandDriver + 'static> HandDriver for StallGuard<D> {
    fn joint_names(&self) -> Vec<String> {
        self.names.clone()
    }
    fn dof(&self) -> usize {
        self.names.len()
    }
    fn state(&self) -> DriverState {
        lock(&self.inner).state()
    }
    fn configure(&mut self) -> Result<()> {
        self.beat();
        lock(&self.inner).configure()
    }
    fn enable(&mut self) -> Result<()> {
        self.beat();
        *lock(&self.tripped) = None;
        let r = lock(&self.inner).enable();
        self.beat();
        r
    }
    fn read_state(&mut self) -> Result<JointState> {
        self.check_tripped()?;
        self.beat();
        lock(&self.inner).read_state()
    }
    fn write_targets(&mut self, targets: &JointTargets) -> Result<()> {
        self.check_tripped()?;
        self.beat();
        lock(&self.inner).write_targets(targets)
    }
    fn disable(&mut self) -> Result<()> {
        lock(&self.inner).disable()
    }
}
