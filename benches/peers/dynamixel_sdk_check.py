#!/usr/bin/env python3
"""Drive `dex hw emulate` with the official ROBOTIS DynamixelSDK, as if it were real servos.

The script starts `dex hw emulate --hand leap --pty`, opens the pseudo-terminal it
prints with the SDK's PortHandler at 4 Mbit/s, and runs a series of checks, one
line each (`ok NAME` or `FAILED NAME: DETAIL`). It then times the LEAP control
cycle (Sync Write of 16 goals + Fast Sync Read of 126/10 for 16 servos) with the
SDK and with `dex hw bench` on the same bus, stops the emulator with SIGINT and
prints `N passed, M failed`. Exit status 0 iff nothing failed.

Install and run (from the repository root, after `cargo build --release`):
    pip install dynamixel-sdk==4.1.0
    python3 benches/peers/dynamixel_sdk_check.py [--dex target/release/dex] [--cycles 1000]
"""

import argparse
import collections
import os
import signal
import subprocess
import sys
import threading
import time

try:
    import dynamixel_sdk as sdk
except ImportError:  # pragma: no cover - depends on the environment
    sys.exit("dynamixel_sdk is not installed: pip install dynamixel-sdk==4.1.0")

BAUD = 4_000_000
IDS = list(range(16))
MODEL_XC330_M288 = 1240

# XC330-M288-T control table addresses used below.
ADDR_MODEL_NUMBER = 0
ADDR_RETURN_DELAY = 9
ADDR_OPERATING_MODE = 11
ADDR_TORQUE_ENABLE = 64
ADDR_PROFILE_VELOCITY = 112
ADDR_GOAL_POSITION = 116
ADDR_PRESENT_CURRENT = 126
ADDR_PRESENT_VELOCITY = 128
ADDR_PRESENT_POSITION = 132

ERRNUM_ACCESS = 7


class CheckFailed(Exception):
    """A check's expectation did not hold."""


def expect(condition, detail):
    if not condition:
        raise CheckFailed(detail)


def le32(value):
    value &= 0xFFFFFFFF
    return [value & 0xFF, (value >> 8) & 0xFF, (value >> 16) & 0xFF, (value >> 24) & 0xFF]


def signed(value, bits):
    """Two's complement of an unsigned `bits`-wide value."""
    return value - (1 << bits) if value & (1 << (bits - 1)) else value


class Emulator:
    """`dex hw emulate --pty` as a child process; its output is drained in the background."""

    def __init__(self, dex):
        self.proc = subprocess.Popen(
            [dex, "hw", "emulate", "--hand", "leap", "--pty"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stderr_tail = collections.deque(maxlen=20)
        self._first_line = None
        self._got_first = threading.Event()
        threading.Thread(target=self._drain_stdout, daemon=True).start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    def _drain_stdout(self):
        for line in self.proc.stdout:
            if self._first_line is None:
                self._first_line = line.rstrip("\n")
                self._got_first.set()
        self._got_first.set()

    def _drain_stderr(self):
        for line in self.proc.stderr:
            self.stderr_tail.append(line.rstrip("\n"))

    def pty_path(self, timeout=10.0):
        self._got_first.wait(timeout)
        line = self._first_line or ""
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or parts[0] != "pty":
            raise RuntimeError(
                f"expected `pty <path>` as the emulator's first line, got {line!r}; "
                f"stderr: {' | '.join(self.stderr_tail)}"
            )
        return parts[1]

    def stop(self, timeout=10.0):
        """SIGINT, then wait; returns the exit status (None if it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None


class Runner:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def run(self, name, fn):
        try:
            fn()
        except CheckFailed as e:
            self.fail(name, str(e))
        except Exception as e:  # noqa: BLE001 - any crash is a failed check, not a dead script
            self.fail(name, f"{type(e).__name__}: {e}")
        else:
            self.ok(name)

    def ok(self, name):
        self.passed += 1
        print(f"ok {name}", flush=True)

    def fail(self, name, detail):
        self.failed += 1
        print(f"FAILED {name}: {detail}", flush=True)


class SdkChecks:
    def __init__(self, port, ph):
        self.port = port
        self.ph = ph

    def comm(self, what, result, error=0):
        """Fails unless the SDK call communicated and the status carried no error."""
        expect(result == sdk.COMM_SUCCESS, f"{what}: {self.ph.getTxRxResult(result)} ({result})")
        expect(error == 0, f"{what}: status error {error} {self.ph.getRxPacketError(error)}")

    def read1(self, dxl_id, addr):
        value, result, error = self.ph.read1ByteTxRx(self.port, dxl_id, addr)
        self.comm(f"read1 id {dxl_id} addr {addr}", result, error)
        return value

    def read4(self, dxl_id, addr):
        value, result, error = self.ph.read4ByteTxRx(self.port, dxl_id, addr)
        self.comm(f"read4 id {dxl_id} addr {addr}", result, error)
        return value

    # 1
    def ping_all(self):
        for dxl_id in IDS:
            model, result, error = self.ph.ping(self.port, dxl_id)
            self.comm(f"ping id {dxl_id}", result, error)
            expect(model == MODEL_XC330_M288, f"id {dxl_id}: model {model}, expected {MODEL_XC330_M288}")

    # 2
    def ping_absent(self):
        _, result, _ = self.ph.ping(self.port, 20)
        expect(result == sdk.COMM_RX_TIMEOUT,
               f"ping id 20: {self.ph.getTxRxResult(result)} ({result}), expected COMM_RX_TIMEOUT")

    # 3
    def broadcast_ping(self):
        found, result = self.ph.broadcastPing(self.port)
        self.comm("broadcastPing", result)
        expect(sorted(found) == IDS, f"answered IDs {sorted(found)}, expected 0..15")
        models = {i: m for i, (m, _fw) in found.items() if m != MODEL_XC330_M288}
        expect(not models, f"unexpected model numbers {models}")

    # 4
    def return_delay_time(self):
        for dxl_id in IDS:
            result, error = self.ph.write1ByteTxRx(self.port, dxl_id, ADDR_RETURN_DELAY, 0)
            self.comm(f"write RDT id {dxl_id}", result, error)
        for dxl_id in IDS:
            value = self.read1(dxl_id, ADDR_RETURN_DELAY)
            expect(value == 0, f"id {dxl_id}: Return Delay Time reads {value}, expected 0")

    # 5
    def operating_mode(self):
        result, error = self.ph.write1ByteTxRx(self.port, 0, ADDR_OPERATING_MODE, 5)
        self.comm("write Operating Mode id 0", result, error)
        value = self.read1(0, ADDR_OPERATING_MODE)
        expect(value == 5, f"Operating Mode reads {value}, expected 5")

    # 6
    def eeprom_locked_by_torque(self):
        result, error = self.ph.write1ByteTxRx(self.port, 0, ADDR_TORQUE_ENABLE, 1)
        self.comm("torque on id 0", result, error)
        before = self.read1(0, ADDR_OPERATING_MODE)
        result, error = self.ph.write1ByteTxRx(self.port, 0, ADDR_OPERATING_MODE, 3)
        expect(result == sdk.COMM_SUCCESS,
               f"EEPROM write with torque on: {self.ph.getTxRxResult(result)} ({result})")
        expect(error == ERRNUM_ACCESS, f"EEPROM write with torque on: status error {error}, expected 7")
        after = self.read1(0, ADDR_OPERATING_MODE)
        expect(after == before, f"Operating Mode changed from {before} to {after} despite the error")

    # 7
    def goal_position(self):
        goal = 2100
        result, error = self.ph.write4ByteTxRx(self.port, 0, ADDR_GOAL_POSITION, goal)
        self.comm("write Goal Position id 0", result, error)
        value = self.read4(0, ADDR_GOAL_POSITION)
        expect(value == goal, f"Goal Position reads {value}, expected {goal}")

    # 8
    def sync_write_then_sync_read(self):
        goals = {dxl_id: 1500 + 37 * dxl_id for dxl_id in IDS}
        writer = sdk.GroupSyncWrite(self.port, self.ph, ADDR_GOAL_POSITION, 4)
        for dxl_id, goal in goals.items():
            expect(writer.addParam(dxl_id, le32(goal)), f"GroupSyncWrite.addParam({dxl_id}) refused")
        self.comm("GroupSyncWrite.txPacket", writer.txPacket())
        # Sync Write has no reply: a round trip guarantees the emulator has applied it.
        _, result, error = self.ph.ping(self.port, 0)
        self.comm("barrier ping", result, error)
        reader = sdk.GroupSyncRead(self.port, self.ph, ADDR_GOAL_POSITION, 4)
        for dxl_id in IDS:
            reader.addParam(dxl_id)
        self.comm("GroupSyncRead.txRxPacket", reader.txRxPacket())
        for dxl_id, goal in goals.items():
            expect(reader.isAvailable(dxl_id, ADDR_GOAL_POSITION, 4), f"id {dxl_id}: no data")
            value = reader.getData(dxl_id, ADDR_GOAL_POSITION, 4)
            expect(value == goal, f"id {dxl_id}: Goal Position reads {value}, expected {goal}")

    # 9
    def fast_sync_read_leap(self):
        reader = sdk.GroupSyncRead(self.port, self.ph, ADDR_PRESENT_CURRENT, 10)
        for dxl_id in IDS:
            reader.addParam(dxl_id)
        self.comm("GroupSyncRead.fastSyncRead", reader.fastSyncRead())
        torque_off = {dxl_id for dxl_id in IDS if dxl_id != 0}
        for dxl_id in IDS:
            for addr, size in ((ADDR_PRESENT_CURRENT, 2), (ADDR_PRESENT_VELOCITY, 4), (ADDR_PRESENT_POSITION, 4)):
                expect(reader.isAvailable(dxl_id, addr, size), f"id {dxl_id}: addr {addr}/{size} not available")
            current = signed(reader.getData(dxl_id, ADDR_PRESENT_CURRENT, 2), 16)
            velocity = signed(reader.getData(dxl_id, ADDR_PRESENT_VELOCITY, 4), 32)
            position = signed(reader.getData(dxl_id, ADDR_PRESENT_POSITION, 4), 32)
            expect(abs(current) <= 2352, f"id {dxl_id}: current {current} mA beyond the 2352 mA limit")
            expect(abs(velocity) <= 2047, f"id {dxl_id}: velocity {velocity} beyond the velocity range")
            if dxl_id in torque_off:
                expect(0 <= position <= 4095, f"id {dxl_id}: position {position} outside 0..4095")
                expect(velocity == 0, f"id {dxl_id}: torque off but velocity {velocity}")
            else:
                expect(abs(position) <= 1_048_575, f"id {dxl_id}: position {position} outside ±256 rev")

    # 10
    def bulk_read_mixed(self):
        reader = sdk.GroupBulkRead(self.port, self.ph)
        items = ((1, ADDR_PRESENT_POSITION, 4), (2, ADDR_MODEL_NUMBER, 2), (3, ADDR_TORQUE_ENABLE, 1))
        for dxl_id, addr, size in items:
            expect(reader.addParam(dxl_id, addr, size), f"GroupBulkRead.addParam({dxl_id}) refused")
        self.comm("GroupBulkRead.txRxPacket", reader.txRxPacket())
        for dxl_id, addr, size in items:
            expect(reader.isAvailable(dxl_id, addr, size), f"id {dxl_id}: {addr}/{size} not available")
        # Cross-check against plain reads of the same items.
        position = reader.getData(1, ADDR_PRESENT_POSITION, 4)
        expect(position == self.read4(1, ADDR_PRESENT_POSITION),
               f"id 1: bulk Present Position {position} differs from a plain read")
        expect(0 <= position <= 4095, f"id 1: Present Position {position} outside 0..4095")
        model = reader.getData(2, ADDR_MODEL_NUMBER, 2)
        expect(model == MODEL_XC330_M288, f"id 2: Model Number {model}, expected {MODEL_XC330_M288}")
        torque = reader.getData(3, ADDR_TORQUE_ENABLE, 1)
        expect(torque == 0, f"id 3: Torque Enable {torque}, expected 0")

    # 11
    def reboot_clears_torque(self):
        expect(self.read1(0, ADDR_TORQUE_ENABLE) == 1, "precondition: torque of id 0 should be on")
        result, error = self.ph.reboot(self.port, 0)
        self.comm("reboot id 0", result, error)
        # A real servo needs a moment to boot; retry the read until it answers.
        deadline = time.monotonic() + 2.0
        while True:
            value, result, error = self.ph.read1ByteTxRx(self.port, 0, ADDR_TORQUE_ENABLE)
            if result == sdk.COMM_SUCCESS or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        self.comm("read Torque Enable after reboot", result, error)
        expect(value == 0, f"Torque Enable reads {value} after reboot, expected 0")

    # 12
    def byte_stuffing_roundtrip(self):
        value = 0x00FDFFFF  # little endian on the wire: FF FF FD 00, the header pattern
        result, error = self.ph.write4ByteTxRx(self.port, 5, ADDR_PROFILE_VELOCITY, value)
        self.comm("write Profile Velocity id 5", result, error)
        back = self.read4(5, ADDR_PROFILE_VELOCITY)
        expect(back == value, f"Profile Velocity reads 0x{back:08X}, expected 0x{value:08X}")

    # 13 (SDK half)
    def bench(self, cycles):
        writer = sdk.GroupSyncWrite(self.port, self.ph, ADDR_GOAL_POSITION, 4)
        for dxl_id in IDS:
            writer.addParam(dxl_id, le32(2048))
        reader = sdk.GroupSyncRead(self.port, self.ph, ADDR_PRESENT_CURRENT, 10)
        for dxl_id in IDS:
            reader.addParam(dxl_id)
        errors = 0
        start = time.perf_counter()
        for i in range(cycles):
            goal = 2000 + (i % 100)
            for dxl_id in IDS:
                writer.changeParam(dxl_id, le32(goal))
            if writer.txPacket() != sdk.COMM_SUCCESS:
                errors += 1
            if reader.fastSyncRead() != sdk.COMM_SUCCESS:
                errors += 1
        elapsed = time.perf_counter() - start
        rate = cycles / elapsed
        print(f"sdk_cycles_per_s {rate:.1f}", flush=True)
        expect(errors == 0, f"{errors} failed calls in {cycles} cycles")
        return rate


def dex_bench(dex, pty, cycles, timeout):
    proc = subprocess.run(
        [dex, "hw", "bench", "--port", pty, "--hand", "leap", "--cycles", str(cycles)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = proc.stdout.strip().splitlines()
    expect(proc.returncode == 0,
           f"exit status {proc.returncode}; stderr: {proc.stderr.strip()[-500:]}")
    expect(lines, "no output")
    parts = lines[-1].split()
    expect(len(parts) == 2 and parts[0] == "cycles_per_s", f"last line {lines[-1]!r}")
    return float(parts[1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dex", default="target/release/dex", help="the dex binary (default: %(default)s)")
    parser.add_argument("--cycles", type=int, default=1000, help="control cycles to time (default: %(default)s)")
    args = parser.parse_args()
    if not os.access(args.dex, os.X_OK):
        sys.exit(f"{args.dex}: not an executable; build it with `cargo build --release` or pass --dex")
    # The SDK busy-polls the port; let the drain threads and the poller trade the GIL often.
    sys.setswitchinterval(1e-4)

    runner = Runner()
    emulator = Emulator(args.dex)
    try:
        pty = emulator.pty_path()
        print(f"# emulator on {pty}", flush=True)
        port = sdk.PortHandler(pty)
        if not port.openPort() or not port.setBaudRate(BAUD):
            raise RuntimeError(f"PortHandler could not open {pty} at {BAUD} bit/s")
        ph = sdk.PacketHandler(2.0)
        checks = SdkChecks(port, ph)
        runner.run("ping_ids_0_15_model_1240", checks.ping_all)
        runner.run("ping_absent_id_20_times_out", checks.ping_absent)
        runner.run("broadcast_ping_finds_ids_0_15", checks.broadcast_ping)
        runner.run("return_delay_time_0_on_all", checks.return_delay_time)
        runner.run("operating_mode_5_id_0", checks.operating_mode)
        runner.run("eeprom_write_with_torque_on_is_access_error", checks.eeprom_locked_by_torque)
        runner.run("goal_position_write_read_id_0", checks.goal_position)
        runner.run("sync_write_16_then_sync_read", checks.sync_write_then_sync_read)
        runner.run("fast_sync_read_126_10_leap", checks.fast_sync_read_leap)
        runner.run("bulk_read_mixed_lengths", checks.bulk_read_mixed)
        runner.run("reboot_clears_torque", checks.reboot_clears_torque)
        runner.run("byte_stuffing_roundtrip_00FDFFFF", checks.byte_stuffing_roundtrip)

        sdk_rate = None

        def sdk_bench():
            nonlocal sdk_rate
            sdk_rate = checks.bench(args.cycles)

        runner.run("bench_sdk", sdk_bench)
        port.closePort()  # hand the bus over to dex

        def dex_side():
            rate = dex_bench(args.dex, pty, args.cycles, timeout=max(60.0, args.cycles * 0.05))
            print(f"dex_cycles_per_s {rate:.1f}", flush=True)
            if sdk_rate:
                print(f"ratio_dex_over_sdk {rate / sdk_rate:.2f}", flush=True)

        runner.run("bench_dex", dex_side)
    except Exception as e:  # noqa: BLE001 - report set-up failures as a failed check
        runner.fail("setup", f"{type(e).__name__}: {e}")
    finally:
        status = emulator.stop()
        if status == 0:
            runner.ok("emulator_exits_0_on_sigint")
        else:
            tail = " | ".join(emulator.stderr_tail)
            runner.fail("emulator_exits_0_on_sigint", f"exit status {status}; stderr: {tail}")

    print(f"{runner.passed} passed, {runner.failed} failed", flush=True)
    return 0 if runner.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
