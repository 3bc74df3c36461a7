//! [`Task`]: what one task adds to the machinery every task shares ([`HandCore`]), and
//! the one [`Env`](crate::Env) implementation that serves every task.

use super::hand_core::HandCore;
use crate::env::{Info, Observation, Step};
use crate::error::Result;

/// A task on a hand: its name, how an episode starts, and what a step observes and
/// rewards once the action is applied. Everything else an environment does (spaces,
/// reseeding, checking and applying actions through the action mapping and latency,
/// the simulator accessors) is [`HandCore`]'s, and [`env_for_task!`] writes the
/// [`Env`](crate::Env) implementation from it.
///
/// (A blanket `impl<T: Task> Env for T` would overlap `Env`'s forwarding impl for
/// `Box<E>`, which coherence cannot rule out, hence the macro.)
pub(crate) trait Task: Send {
    /// The shared state.
    fn core(&self) -> &HandCore;
    /// The shared state, mutably.
    fn core_mut(&mut self) -> &mut HandCore;
    /// The task's name ([`Env::name`](crate::Env::name)).
    fn task_name(&self) -> &str;
    /// Starts an episode (the random stream is already reseeded).
    fn start_episode(&mut self) -> Result<(Observation, Info)>;
    /// Observes, rewards and ends (or not) the step whose action was just applied.
    fn after_action(&mut self) -> Result<Step>;
}

/// `impl Env for $task` from its [`Task`] implementation.
macro_rules! env_for_task {
    ($task:ty) => {
        impl $crate::env::Env for $task {
            fn name(&self) -> &str {
                $crate::tasks::task::Task::task_name(self)
            }
            fn action_space(&self) -> &$crate::env::BoxSpace {
                &$crate::tasks::task::Task::core(self).action_space
            }
            fn observation_spec(&self) -> &$crate::env::ObservationSpec {
                &$crate::tasks::task::Task::core(self).obs_spec
            }
            fn reset(
                &mut self,
                seed: Option<u64>,
            ) -> $crate::error::Result<($crate::env::Observation, $crate::env::Info)> {
                let core = $crate::tasks::task::Task::core_mut(self);
                core.reseed(seed);
                core.restore_initial()?;
                $crate::tasks::task::Task::start_episode(self)
            }
            fn step(&mut self, action: &[f32]) -> $crate::error::Result<$crate::env::Step> {
                $crate::tasks::task::Task::core_mut(self).apply_action(action)?;
                $crate::tasks::task::Task::after_action(self)
            }
            fn simulator(&self) -> Option<&dyn $crate::simulator::Simulator> {
                Some($crate::tasks::task::Task::core(self).sim.as_ref())
            }
            fn simulator_mut(&mut self) -> Option<&mut dyn $crate::simulator::Simulator> {
                Some($crate::tasks::task::Task::core_mut(self).sim.as_mut())
            }
        }
    };
}
pub(crate) use env_for_task;
