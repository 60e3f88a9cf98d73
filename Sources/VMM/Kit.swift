import Glibc

/// The default guest kit: Debian's kernel and an initramfs, built at set-up
/// by scripts/build-kit.sh into the cache.
public enum Kit {
    public static var directory: String {
        let cache = getenv("XENOLITH_CACHE").map { String(cString: $0) } ?? "/var/cache/xenolith"
        return cache + "/kit"
    }
    public static var kernel: String { directory + "/vmlinuz" }
    public static var initrd: String { directory + "/initrd.img" }
    public static var isBuilt: Bool { access(kernel, R_OK) == 0 && access(initrd, R_OK) == 0 }

    /// The build script, found beside the sources this binary was built from.
    public static var buildScript: String {
        var path = #filePath
        for _ in 0..<3 { if let slash = path.lastIndex(of: "/") { path = String(path[..<slash]) } }
        return path + "/scripts/build-kit.sh"
    }
}
