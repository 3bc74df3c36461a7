//! CRC-16 of Dynamixel Protocol 2.0: polynomial 0x8005, initial value 0, MSB
//! first, no reflection, no final XOR (CRC-16/UMTS, also called BUYPASS). It
//! covers every byte of a packet from the first header byte through the last
//! parameter, after byte stuffing, and is sent low byte first.

const fn make_table() -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x8005
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

static TABLE: [u16; 256] = make_table();

/// Continues a CRC over more bytes (start from 0).
#[inline]
pub fn update(mut crc: u16, bytes: &[u8]) -> u16 {
    for &b in bytes {
        let i = ((crc >> 8) as u8 ^ b) as usize;
        crc = (crc << 8) ^ TABLE[i];
    }
    crc
}

/// The CRC of `bytes`.
#[inline]
pub fn crc16(bytes: &[u8]) -> u16 {
    update(0, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_check_value() {
        // CRC-16/UMTS check value of the ASCII string "123456789".
        assert_eq!(crc16(b"123456789"), 0xFEE8);
    }

    #[test]
    fn official_ping_example() {
        // Protocol 2.0 manual, Ping ID 1: CRC 0x4E19 (sent 19 4E).
        assert_eq!(
            crc16(&[0xFF, 0xFF, 0xFD, 0x00, 0x01, 0x03, 0x00, 0x01]),
            0x4E19
        );
        // Its reply: model 1030, firmware 38, CRC 0x5D65.
        assert_eq!(
            crc16(&[
                0xFF, 0xFF, 0xFD, 0x00, 0x01, 0x07, 0x00, 0x55, 0x00, 0x06, 0x04, 0x26
            ]),
            0x5D65
        );
    }

    #[test]
    fn update_is_incremental() {
        let data = b"dynamixel protocol two";
        assert_eq!(update(update(0, &data[..7]), &data[7..]), crc16(data));
    }
}
