//! The error numbers a servo reports in a status packet (Protocol 2.0).

/// The error number of a status packet (its low 7 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatusError {
    /// 0x01: the instruction failed.
    #[error("result fail")]
    ResultFail,
    /// 0x02: unknown instruction, or Action without Reg Write.
    #[error("instruction error")]
    Instruction,
    /// 0x03: the servo saw a bad CRC.
    #[error("CRC error")]
    Crc,
    /// 0x04: value out of range.
    #[error("data range error")]
    DataRange,
    /// 0x05: wrong data length for the item.
    #[error("data length error")]
    DataLength,
    /// 0x06: value beyond a limit.
    #[error("data limit error")]
    DataLimit,
    /// 0x07: read-only or undefined address, or EEPROM written with torque on.
    #[error("access error")]
    Access,
    /// Any other number.
    #[error("error number {0}")]
    Other(u8),
}

impl StatusError {
    /// The error number of an error byte, if any (the alert bit aside).
    pub fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte & 0x7F {
            0 => return None,
            1 => StatusError::ResultFail,
            2 => StatusError::Instruction,
            3 => StatusError::Crc,
            4 => StatusError::DataRange,
            5 => StatusError::DataLength,
            6 => StatusError::DataLimit,
            7 => StatusError::Access,
            n => StatusError::Other(n),
        })
    }

    /// The error number.
    pub fn number(self) -> u8 {
        match self {
            StatusError::ResultFail => 1,
            StatusError::Instruction => 2,
            StatusError::Crc => 3,
            StatusError::DataRange => 4,
            StatusError::DataLength => 5,
            StatusError::DataLimit => 6,
            StatusError::Access => 7,
            StatusError::Other(n) => n,
        }
    }
}
