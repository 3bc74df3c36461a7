//! Byte transports to a servo bus: a serial port (USB adapter or pseudo-terminal)
//! and, for tests, the in-process emulator ([`crate::emulator::EmulatedPort`]).

#[cfg(feature = "serial")]
mod serial;

#[cfg(feature = "serial")]
pub use serial::SerialTransport;

use std::time::Duration;

use crate::error::Result;

/// A half-duplex byte pipe to a servo bus.
///
/// Blocking and synchronous: `read` waits at most `timeout`. Implementations own
/// their buffers; nothing is shared with the caller after a call returns.
pub trait Transport: Send {
    /// Sends all of `bytes`.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Io`] if the port fails.
    fn write_all(&mut self, bytes: &[u8]) -> Result<()>;

    /// Reads what is available into `buf`, waiting at most `timeout` for the
    /// first byte; returns the number of bytes read, 0 on timeout.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Io`] if the port fails.
    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize>;

    /// Discards bytes received and not yet read.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Io`] if the port fails.
    fn clear_input(&mut self) -> Result<()>;

    /// The line rate (bit/s), for wire-time estimates.
    fn baud_rate(&self) -> u32;

    /// For transports on emulated time: the current emulated time (s). Reply
    /// timeouts are then measured on that clock instead of the wall clock.
    fn emulated_time(&self) -> Option<f64> {
        None
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        (**self).write_all(bytes)
    }
    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize> {
        (**self).read(buf, timeout)
    }
    fn clear_input(&mut self) -> Result<()> {
        (**self).clear_input()
    }
    fn baud_rate(&self) -> u32 {
        (**self).baud_rate()
    }
    fn emulated_time(&self) -> Option<f64> {
        (**self).emulated_time()
    }
}

/// Time on the wire of `bytes` bytes at `baud` bit/s (8N1: 10 bits a byte).
pub fn wire_time(bytes: usize, baud: u32) -> Duration {
    Duration::from_secs_f64(bytes as f64 * 10.0 / f64::from(baud.max(1)))
}
