import CKVM
import Glibc
import KVM
import Machine

/// What a save did: the image's size, the pages written, the time the
/// guest was stopped for it.
public struct HVMSaveResult: Sendable {
    public let bytes: UInt64
    public let pages: UInt64
    public let pausedNanoseconds: UInt64
}

/// `xl save` of an HVM domain: the guest is stopped where it runs (no
/// help from it), its memory, KVM's state of every vCPU and of the VM, and
/// every device's registers go into an `HVMSaveImage`; the run then ends.
/// `xl restore` builds the same machine and puts it all back, so the guest
/// goes on from the instruction it was stopped at.
///
/// Time: kvm-clock is set on restore to its saved value plus the wall-clock
/// time the guest spent in the file, so the guest's wall clock (its boot
/// time plus kvm-clock) is right again at once, and each vCPU reports the
/// stop to the guest (KVM_KVMCLOCK_CTRL) as after a pause, so the gap is not
/// taken for a lockup. The gap shows in the guest's monotonic clock, as it
/// does after a host suspend.
extension HVMDomain {
    /// Saves the domain to `path`; on success the run ends (`.stopped`). A
    /// failure leaves the guest running as before.
    public func save(to path: String) throws(HVMRequestError) -> HVMSaveResult {
        let start = ckvm_monotonic_ns()
        // A guest the user paused is saved as it is, and stays paused if the save fails.
        let wasPaused = isPaused
        if !wasPaused { try pause() }
        for d in virtioDevices { d.stop() }
        defer {
            if exitReason == nil {
                for d in virtioDevices { d.start() }
                if !wasPaused { unpause() }
            }
        }
        let written: (UInt64, UInt64)
        do {
            written = try writeImage(to: path)
        } catch let e as HVMRequestError {
            throw e
        } catch {
            throw HVMRequestError("save: \(error)")
        }
        end(.stopped)
        return HVMSaveResult(bytes: written.0, pages: written.1, pausedNanoseconds: ckvm_monotonic_ns() &- start)
    }

    private func writeImage(to path: String) throws -> (UInt64, UInt64) {
        var out = try SaveFileWriter(path: path, magic: HVMSaveImage.magic, version: HVMSaveImage.version)
        defer { out.close() }

        var m = StateWriter()
        m.u64(memoryBytes)
        m.u32(UInt32(maxVCPUCount))
        m.u64(try vm.clockNanoseconds())
        m.u64(ckvm_realtime_ns())
        m.block(Array(name.utf8.prefix(HVMSaveImage.maxName)))
        m.u32(UInt32(statefulDevices.count))
        for d in statefulDevices { m.block(Array(d.tag.utf8)) }
        try out.record(HVMSaveImage.RecordType.machine.rawValue, m.bytes)

        for part in VMStatePart.allCases where part != .clock {
            var w = StateWriter()
            w.u32(UInt32(part.rawValue))
            w.block(try vm.state(part))
            try out.record(HVMSaveImage.RecordType.vm.rawValue, w.bytes)
        }

        let msrIndices = try kvm.msrIndexList()
        let fpu = UnsafeMutableRawBufferPointer.allocate(byteCount: VCPU.xsaveSize, alignment: 64)
        defer { fpu.deallocate() }
        for cpu in cpus {
            let v = cpu.vcpu
            var w = StateWriter()
            w.u32(UInt32(cpu.id))
            var parts: [(VCPUStatePart, [UInt8])] = []
            for part in VCPUStatePart.allCases {
                if part == .extendedControl {
                    // XCR0 exists only where the host has XSAVE; nothing else may be missing.
                    if let bytes = try? v.state(part) { parts.append((part, bytes)) }
                } else {
                    parts.append((part, try v.state(part)))
                }
            }
            w.u32(UInt32(parts.count))
            for (part, bytes) in parts { w.u32(UInt32(part.rawValue)); w.block(bytes) }
            let format = try v.saveFPU(into: fpu)
            w.u32(format.rawValue)
            w.block(UnsafeRawBufferPointer(format == .xsave ? fpu : UnsafeMutableRawBufferPointer(rebasing: fpu[0..<VCPU.fpuSize])))
            // Each MSR on its own: KVM lists some this vCPU cannot read.
            var msrs: [(UInt32, UInt64)] = []
            for index in msrIndices {
                if let value = try? v.readMSRs([index]).first { msrs.append((index, value)) }
            }
            w.u32(UInt32(msrs.count))
            for (index, value) in msrs { w.u32(index); w.u64(value) }
            try out.record(HVMSaveImage.RecordType.vcpu.rawValue, w.bytes)
        }

        for d in statefulDevices {
            var state = StateWriter()
            d.device.saveState(into: &state)
            var w = StateWriter()
            w.block(Array(d.tag.utf8))
            w.block(state.bytes)
            try out.record(HVMSaveImage.RecordType.device.rawValue, w.bytes)
        }

        let pages = try out.memory(HVMSaveImage.RecordType.memory.rawValue, runs: memory.nonZeroRuns(), base: memory.base)
        try out.finish()
        return (out.offset, pages)
    }

    /// Puts a saved guest into this freshly built machine (before any vCPU runs).
    func restore(from image: HVMSaveImage) throws {
        let tags = statefulDevices.map(\.tag)
        guard tags == image.deviceTags else {
            throw HVMBuildError("the saved guest's devices (\(image.deviceTags.joined(separator: ", "))) are not this machine's (\(tags.joined(separator: ", "))): restore it with the disks, NICs and vsock it was saved with")
        }
        try image.file.loadMemory(into: memory)
        for (part, bytes) in image.vmParts { try vm.setState(part, bytes) }

        // kvm-clock goes on from where it stopped plus the time spent in
        // the file. Before the MSRs: writing MSR_KVM_WALL_CLOCK_NEW makes
        // KVM write the boot time (now less kvm-clock) to the guest again,
        // which must be the saved guest's boot time, not this VM's.
        let now = ckvm_realtime_ns()
        let away = now > image.savedRealtimeNanoseconds ? now - image.savedRealtimeNanoseconds : 0
        try vm.setClock(nanoseconds: image.clockNanoseconds &+ away)
        if getenv("XENO_TRACE") != nil {
            let line = "xeno: restore: kvm-clock saved \(image.clockNanoseconds) ns, \(away) ns in the file, now \((try? vm.clockNanoseconds()) ?? 0) ns\n"
            _ = line.withCString { write(2, $0, strlen($0)) }
        }
        let fpu = UnsafeMutableRawBufferPointer.allocate(byteCount: VCPU.xsaveSize, alignment: 64)
        defer { fpu.deallocate() }
        for (cpu, saved) in zip(cpus, image.vcpus) {
            let v = cpu.vcpu
            func part(_ p: VCPUStatePart) throws {
                guard let bytes = saved.parts.first(where: { $0.0 == p })?.1 else {
                    if p == .extendedControl { return }
                    throw HVMBuildError("vCPU \(cpu.id): the image has no \(p) state")
                }
                try v.setState(p, bytes)
            }
            // KVM's order: registers and FPU, then the special registers
            // (EFER, CR4) the MSRs depend on, then the MP state, the local
            // APIC and the pending events that use them.
            try part(.registers)
            fpu.initializeMemory(as: UInt8.self, repeating: 0)
            guard saved.fpu.count == (saved.fpuFormat == .xsave ? VCPU.xsaveSize : VCPU.fpuSize) else {
                throw HVMBuildError("vCPU \(cpu.id): an FPU state of \(saved.fpu.count) bytes")
            }
            fpu.copyBytes(from: saved.fpu)
            try v.restoreFPU(UnsafeRawBufferPointer(fpu), format: saved.fpuFormat)
            try part(.extendedControl)
            try part(.specialRegisters)
            let refused = v.writeMSRsReportingRefused(saved.msrs)
            if !refused.isEmpty, getenv("XENO_TRACE") != nil {
                let line = "xeno: restore: vCPU \(cpu.id): KVM refused MSRs \(refused.map { "0x" + String($0, radix: 16) }.joined(separator: " "))\n"
                _ = line.withCString { write(2, $0, strlen($0)) }
            }
            try part(.multiprocessing)
            try part(.localAPIC)
            try part(.events)
            try part(.debugRegisters)
        }

        for (d, bytes) in zip(statefulDevices, image.deviceStates) {
            var r = StateReader(bytes, what: d.tag)
            do {
                try d.device.restoreState(from: &r)
                try r.finish()
            } catch {
                throw HVMBuildError("restore: \(error)")
            }
        }
        // The vCPUs the guest had: those the hotplug controller says are in.
        for (i, cpu) in cpus.enumerated() {
            if cpuHotplug.status(cpu: i).contains(.enabled) { cpu.enter() } else { cpu.leave() }
        }
        // The time in the file is time the guest did not run: steal, as
        // for a pause.
        for cpu in cpus {
            cpu.addSteal(nanoseconds: away)
            cpu.vcpu.reportPausedToGuest()
        }
    }
}
