//! A serial port (a USB–TTL adapter such as the U2D2, or a pseudo-terminal).

use std::io::{Read, Write};
use std::time::Duration;

use super::Transport;
use crate::error::{Error, Result};

/// A serial port opened with `serialport` (8N1, no flow control).
pub struct SerialTransport {
    port: Box<dyn serialport::SerialPort>,
    path: String,
    baud: u32,
    timeout: Duration,
}

impl std::fmt::Debug for SerialTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerialTransport")
            .field("path", &self.path)
            .field("baud", &self.baud)
            .finish()
    }
}

impl SerialTransport {
    /// Opens `path` at `baud` bit/s.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the port cannot be opened or configured.
    pub fn open(path: &str, baud: u32) -> Result<Self> {
        let timeout = Duration::from_millis(10);
        let port = serialport::new(path, baud)
            .timeout(timeout)
            .data_bits(serialport::DataBits::Eight)
            .parity(serialport::Parity::None)
            .stop_bits(serialport::StopBits::One)
            .flow_control(serialport::FlowControl::None)
            .open()
            .map_err(|e| Error::io(format!("cannot open serial port {path}"), e.into()))?;
        Ok(Self {
            port,
            path: path.to_string(),
            baud,
            timeout,
        })
    }

    /// The port's path.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl Transport for SerialTransport {
    fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        // No flush: on a TTY it is tcdrain, which would block until the bytes
        // left the adapter (or the other end of a pty read them), serialising a
        // Sync Write with the next instruction for nothing.
        self.port
            .write_all(bytes)
            .map_err(|e| Error::io(format!("write to {}", self.path), e))
    }

    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize> {
        if timeout != self.timeout {
            self.port
                .set_timeout(timeout)
                .map_err(|e| Error::io(format!("set timeout on {}", self.path), e.into()))?;
            self.timeout = timeout;
        }
        match self.port.read(buf) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Ok(0),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(0),
            Err(e) => Err(Error::io(format!("read from {}", self.path), e)),
        }
    }

    fn clear_input(&mut self) -> Result<()> {
        self.port
            .clear(serialport::ClearBuffer::Input)
            .map_err(|e| Error::io(format!("clear input of {}", self.path), e.into()))
    }

    fn baud_rate(&self) -> u32 {
        self.baud
    }
}
