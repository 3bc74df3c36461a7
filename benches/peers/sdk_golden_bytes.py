#!/usr/bin/env python3
"""Capture the exact instruction packets the official ROBOTIS DynamixelSDK transmits.

The SDK's Protocol 2.0 packet handler is driven against an in-memory stand-in for
its PortHandler that records every buffer handed to writePort() and never answers.
Each operation's transmitted bytes are written, one line per operation, to
dex-hw/tests/data/sdk_golden.txt, which the Rust test
dex-hw/tests/sdk_golden_bytes.rs compares with our encoder.

Install and run (from the repository root):
    pip install dynamixel-sdk==4.1.0
    python3 benches/peers/sdk_golden_bytes.py [--out PATH] [--stdout]
"""

import argparse
import os
import sys

try:
    import dynamixel_sdk as sdk
except ImportError:  # pragma: no cover - depends on the environment
    sys.exit("dynamixel_sdk is not installed: pip install dynamixel-sdk==4.1.0")

EXPECTED_SDK_VERSION = "4.1.0"
REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_OUT = os.path.join(REPO_ROOT, "crates", "dex-hw", "tests", "data", "sdk_golden.txt")


def sdk_version():
    try:
        from importlib.metadata import version
        return version("dynamixel-sdk")
    except Exception:  # noqa: BLE001 - metadata may be missing for source installs
        return "unknown"


class RecordingPort:
    """Stands in for dynamixel_sdk.PortHandler: remembers writes, never receives.

    These are the members Protocol2PacketHandler and the group classes touch:
    is_using, clearPort, writePort, readPort, getBytesAvailable, getBaudRate,
    setPacketTimeout, setPacketTimeoutMillis, isPacketTimeout.
    """

    def __init__(self, baudrate=4_000_000):
        self.is_using = False
        self.is_open = True
        self.baudrate = baudrate
        self.writes = []

    # transmit / receive
    def clearPort(self):
        pass

    def writePort(self, packet):
        self.writes.append(bytes(packet))
        return len(packet)

    def readPort(self, length):
        return []

    def getBytesAvailable(self):
        return 0

    # configuration
    def getBaudRate(self):
        return self.baudrate

    def getPortName(self):
        return "recording"

    # timeouts: every wait ends at once, so calls that expect a reply return
    # COMM_RX_TIMEOUT right after transmitting.
    def setPacketTimeout(self, packet_length):
        pass

    def setPacketTimeoutMillis(self, msec):
        pass

    def isPacketTimeout(self):
        return True

    def take(self):
        """Returns the packets written since the last call and releases the port."""
        out, self.writes = self.writes, []
        self.is_using = False
        return out


def le32(value):
    return [value & 0xFF, (value >> 8) & 0xFF, (value >> 16) & 0xFF, (value >> 24) & 0xFF]


def operations(port, ph):
    """Yields (name, callable); each callable makes the SDK transmit exactly one packet.

    Names are the keys the Rust test dispatches on; keep both in step.
    """
    yield "ping_id1", lambda: ph.ping(port, 1)
    yield "read_id1_132_4", lambda: ph.readTx(port, 1, 132, 4)
    yield "write_id1_116_512", lambda: ph.write4ByteTxOnly(port, 1, 116, 512)
    yield "write_id5_112_00FDFFFF", lambda: ph.write4ByteTxOnly(port, 5, 112, 0x00FDFFFF)
    yield "reg_write_id2_65_1", lambda: ph.regWriteTxOnly(port, 2, 65, 1, [1])
    yield "action_id2", lambda: ph.action(port, 2)
    yield "reboot_id3", lambda: ph.reboot(port, 3)

    def sync_write():
        group = sdk.GroupSyncWrite(port, ph, 116, 4)
        group.addParam(1, le32(150))
        group.addParam(2, le32(170))
        return group.txPacket()

    yield "sync_write_116_4_id1_150_id2_170", sync_write

    def sync_read():
        group = sdk.GroupSyncRead(port, ph, 132, 4)
        for dxl_id in (1, 2, 3):
            group.addParam(dxl_id)
        return group.txPacket()

    yield "sync_read_132_4_id1_2_3", sync_read

    # SDK 4.1.0 transmits Fast Sync Read from GroupSyncRead.fastSyncReadTxPacket(),
    # i.e. Protocol2PacketHandler.syncReadTx(..., fast_option=True), instruction 0x8A.
    def fast_sync_read():
        group = sdk.GroupSyncRead(port, ph, 126, 10)
        for dxl_id in range(16):
            group.addParam(dxl_id)
        return group.fastSyncReadTxPacket()

    yield "fast_sync_read_126_10_id0_15", fast_sync_read

    def bulk_read():
        group = sdk.GroupBulkRead(port, ph)
        group.addParam(1, 132, 4)
        group.addParam(2, 0, 2)
        return group.txPacket()

    yield "bulk_read_id1_132_4_id2_0_2", bulk_read

    # Fast Bulk Read (0x9A), same items: GroupBulkRead.fastBulkReadTxPacket().
    def fast_bulk_read():
        group = sdk.GroupBulkRead(port, ph)
        group.addParam(1, 132, 4)
        group.addParam(2, 0, 2)
        return group.fastBulkReadTxPacket()

    yield "fast_bulk_read_id1_132_4_id2_0_2", fast_bulk_read

    def bulk_write():
        group = sdk.GroupBulkWrite(port, ph)
        group.addParam(1, 116, 4, le32(2048))
        group.addParam(2, 64, 1, [1])
        return group.txPacket()

    yield "bulk_write_id1_116_2048_id2_64_1", bulk_write
    yield "factory_reset_id4_02", lambda: ph.factoryReset(port, 4, 0x02)
    yield "clear_multi_turn_id1", lambda: ph.clearMultiTurn(port, 1)


def capture():
    port = RecordingPort()
    ph = sdk.PacketHandler(2.0)
    lines = []
    for name, op in operations(port, ph):
        op()
        packets = port.take()
        if len(packets) != 1:
            raise SystemExit(f"{name}: expected one transmitted packet, got {len(packets)}")
        lines.append((name, packets[0]))
    return lines


def render(lines):
    version = sdk_version()
    head = [
        "# Instruction packets transmitted by the official ROBOTIS DynamixelSDK (Python),",
        f"# dynamixel-sdk {version} from PyPI, captured with a recording stand-in for PortHandler.",
        "# Produced by `python3 benches/peers/sdk_golden_bytes.py` (do not edit by hand).",
        "# Checked against our encoder by dex-hw/tests/sdk_golden_bytes.rs.",
        "# Format: `name: HEX HEX ...` = the exact bytes handed to writePort().",
        "# Not captured: Control Table Backup (0x20): the SDK 4.1.0 has no function that sends it.",
    ]
    if version != EXPECTED_SDK_VERSION:
        head.append(f"# WARNING: expected dynamixel-sdk {EXPECTED_SDK_VERSION}, ran with {version}.")
    body = [f"{name}: " + " ".join(f"{b:02X}" for b in data) for name, data in lines]
    return "\n".join(head + body) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=DEFAULT_OUT, help="golden file to write (default: %(default)s)")
    parser.add_argument("--stdout", action="store_true", help="print instead of writing the file")
    args = parser.parse_args()
    text = render(capture())
    if args.stdout:
        sys.stdout.write(text)
        return
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="ascii") as f:
        f.write(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
