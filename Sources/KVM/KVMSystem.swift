import CKVM
import Glibc

/// The /dev/kvm handle: capability queries and VM creation.
public final class KVMSystem: @unchecked Sendable {
    public let fd: Int32
    /// Size of each vCPU's shared `kvm_run` mapping.
    public let vcpuMapSize: Int

    /// Opens /dev/kvm; the error names the usual causes so a user knows what to fix.
    public init(path: String = "/dev/kvm") throws {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            switch e {
            case ENOENT: throw KVMError("\(path) does not exist (is the kvm module loaded?)", errno: e)
            case EACCES, EPERM: throw KVMError("no permission to open \(path) (run as root or join the kvm group)", errno: e)
            default: throw KVMError("cannot open \(path)", errno: e)
            }
        }
        self.fd = fd
        let version = ckvm_ioctl_int(fd, ckvm_get_api_version(), 0)
        guard version == KVM_API_VERSION else {
            close(fd)
            throw KVMError("unsupported KVM API version \(version)", errno: EINVAL)
        }
        let size = ckvm_ioctl_int(fd, ckvm_get_vcpu_mmap_size(), 0)
        guard size > 0 else {
            let e = errno
            close(fd)
            throw KVMError("KVM_GET_VCPU_MMAP_SIZE", errno: e)
        }
        vcpuMapSize = Int(size)
    }

    deinit { close(fd) }

    /// KVM_CHECK_EXTENSION: 0 when absent, otherwise an extension-specific value.
    public func checkExtension(_ cap: Int32) -> Int {
        Int(max(0, ckvm_ioctl_int(fd, ckvm_check_extension(), UInt(cap))))
    }

    public var maxVCPUs: Int {
        let maxv = checkExtension(KVM_CAP_MAX_VCPUS)
        return maxv > 0 ? maxv : checkExtension(KVM_CAP_NR_VCPUS)
    }

    public func createVM() throws -> VirtualMachine {
        let vmfd = ckvm_ioctl_int(fd, ckvm_create_vm(), 0)
        guard vmfd >= 0 else { throw KVMError("KVM_CREATE_VM") }
        return VirtualMachine(fd: vmfd, system: self)
    }

    /// The CPUID leaves KVM can offer a guest, as (function, index) → registers.
    public func supportedCPUID() throws -> [CPUIDEntry] {
        var capacity = 128
        while capacity <= 4096 {
            let bytes = MemoryLayout<kvm_cpuid2>.size + capacity * MemoryLayout<kvm_cpuid_entry2>.stride
            let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 16)
            defer { raw.deallocate() }
            raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
            let header = raw.assumingMemoryBound(to: kvm_cpuid2.self)
            header.pointee.nent = UInt32(capacity)
            if ckvm_ioctl_ptr(fd, ckvm_get_supported_cpuid(), raw) == 0 {
                let n = Int(header.pointee.nent)
                let entries = (raw + MemoryLayout<kvm_cpuid2>.size).assumingMemoryBound(to: kvm_cpuid_entry2.self)
                return (0..<n).map { CPUIDEntry(entries[$0]) }
            }
            guard errno == E2BIG else { throw KVMError("KVM_GET_SUPPORTED_CPUID") }
            capacity *= 2
        }
        throw KVMError("KVM_GET_SUPPORTED_CPUID", errno: E2BIG)
    }
}

/// One CPUID leaf as KVM describes it.
public struct CPUIDEntry: Sendable, Equatable {
    public var function: UInt32
    public var index: UInt32
    public var flags: UInt32
    public var eax: UInt32
    public var ebx: UInt32
    public var ecx: UInt32
    public var edx: UInt32

    public init(function: UInt32, index: UInt32 = 0, flags: UInt32 = 0,
                eax: UInt32, ebx: UInt32, ecx: UInt32, edx: UInt32) {
        self.function = function; self.index = index; self.flags = flags
        self.eax = eax; self.ebx = ebx; self.ecx = ecx; self.edx = edx
    }

    init(_ e: kvm_cpuid_entry2) {
        self.init(function: e.function, index: e.index, flags: e.flags,
                  eax: e.eax, ebx: e.ebx, ecx: e.ecx, edx: e.edx)
    }

    var raw: kvm_cpuid_entry2 {
        var e = kvm_cpuid_entry2()
        e.function = function; e.index = index; e.flags = flags
        e.eax = eax; e.ebx = ebx; e.ecx = ecx; e.edx = edx
        return e
    }
}
