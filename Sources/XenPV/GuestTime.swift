import CKVM

/// The Xen PV clock: guest system time is nanoseconds since the domain was
/// built (CLOCK_MONOTONIC underneath), published per vCPU as a TSC-relative
/// scale so the guest reads it without exits; wall clock is published in
/// shared_info as the real time at system time zero.
struct GuestTime: Sendable {
    let bootMonotonic: UInt64
    let bootRealtime: UInt64
    let tscKHz: UInt64
    let multiplier: UInt32
    let shift: Int8

    init(tscKHz: UInt64) {
        bootMonotonic = ckvm_monotonic_ns()
        bootRealtime = ckvm_realtime_ns()
        self.tscKHz = tscKHz
        (multiplier, shift) = GuestTime.scale(tscHz: tscKHz * 1000)
    }

    /// A restored domain's clock: its system time goes on from `systemTime`
    /// (what it was when saved), and its wall clock is the host's real time.
    init(tscKHz: UInt64, continuingAt systemTime: UInt64) {
        bootMonotonic = ckvm_monotonic_ns() &- systemTime
        bootRealtime = ckvm_realtime_ns() &- systemTime
        self.tscKHz = tscKHz
        (multiplier, shift) = GuestTime.scale(tscHz: tscKHz * 1000)
    }

    /// A (mul, shift) with ns = ((tsc shifted by shift) * mul) >> 32, the pvclock scale.
    static func scale(tscHz: UInt64) -> (UInt32, Int8) {
        var shift: Int8 = 0
        var tps = tscHz
        let ns: UInt64 = 1_000_000_000
        while tps > ns * 2 || tps >> 32 != 0 { tps >>= 1; shift -= 1 }
        var tps32 = UInt32(tps)
        var scaled = ns
        while UInt64(tps32) <= scaled || scaled >> 32 != 0 {
            if scaled >> 32 != 0 || tps32 & 0x8000_0000 != 0 { scaled >>= 1 } else { tps32 <<= 1 }
            shift += 1
        }
        return (UInt32((scaled << 32) / UInt64(tps32)), shift)
    }

    var systemTime: UInt64 { ckvm_monotonic_ns() &- bootMonotonic }

    /// Writes vcpu_time_info (32 bytes) at `p`, bracketed by an odd version.
    /// `tscOffset` is that vCPU's guest TSC minus the host TSC: KVM keeps one
    /// per vCPU, so each vCPU's scale is published against its own.
    func publish(to p: UnsafeMutableRawPointer, tscOffset: UInt64) {
        let odd = (p.load(as: UInt32.self) &+ 1) | 1
        p.storeBytes(of: odd, as: UInt32.self)
        ckvm_fence()
        let now = ckvm_monotonic_ns()
        let tsc = ckvm_rdtsc() &+ tscOffset
        p.storeBytes(of: tsc, toByteOffset: 8, as: UInt64.self)
        p.storeBytes(of: now &- bootMonotonic, toByteOffset: 16, as: UInt64.self)
        p.storeBytes(of: multiplier, toByteOffset: 24, as: UInt32.self)
        p.storeBytes(of: shift, toByteOffset: 28, as: Int8.self)
        p.storeBytes(of: UInt8(1), toByteOffset: 29, as: UInt8.self)   // TSC_STABLE
        ckvm_fence()
        p.storeBytes(of: odd &+ 1, as: UInt32.self)
    }

    /// shared_info's wall clock fields (wc_version@3072, sec, nsec, sec_hi).
    func publishWallClock(sharedInfo p: UnsafeMutableRawPointer) {
        let odd = (p.load(fromByteOffset: 3072, as: UInt32.self) &+ 1) | 1
        p.storeBytes(of: odd, toByteOffset: 3072, as: UInt32.self)
        ckvm_fence()
        let sec = bootRealtime / 1_000_000_000
        p.storeBytes(of: UInt32(truncatingIfNeeded: sec), toByteOffset: 3076, as: UInt32.self)
        p.storeBytes(of: UInt32(bootRealtime % 1_000_000_000), toByteOffset: 3080, as: UInt32.self)
        p.storeBytes(of: UInt32(truncatingIfNeeded: sec >> 32), toByteOffset: 3084, as: UInt32.self)
        ckvm_fence()
        p.storeBytes(of: odd &+ 1, toByteOffset: 3072, as: UInt32.self)
    }
}
