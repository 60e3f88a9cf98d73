/// x86-64 page-table entry bits, as the PV ABI and the hardware use them.
public enum PTE {
    public static let present: UInt64 = 1 << 0
    public static let writable: UInt64 = 1 << 1
    public static let user: UInt64 = 1 << 2
    public static let writeThrough: UInt64 = 1 << 3
    public static let cacheDisable: UInt64 = 1 << 4
    public static let accessed: UInt64 = 1 << 5
    public static let dirty: UInt64 = 1 << 6
    public static let pageSize: UInt64 = 1 << 7     // PSE at L2/L3, PAT at L1
    public static let global: UInt64 = 1 << 8
    public static let noExecute: UInt64 = 1 << 63
    /// Xen marks kernel-mapping L1 entries with software bit 52 (not needed by us,
    /// but reserved so guests see what they would on Xen).
    public static let frameMask: UInt64 = 0x000f_ffff_ffff_f000

    @inline(__always) public static func frame(_ e: UInt64) -> UInt64 { (e & frameMask) >> 12 }
    @inline(__always) public static func isPresent(_ e: UInt64) -> Bool { e & present != 0 }

    @inline(__always) public static func index(_ va: UInt64, level: Int) -> Int {
        Int((va >> (12 + 9 * UInt64(level - 1))) & 511)
    }
}
