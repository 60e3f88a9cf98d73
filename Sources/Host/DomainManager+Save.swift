import Foundation
import XLConfig

/// `xl save` / `xl restore`. The VMM writes the guest's image (see the
/// XenPV module's SaveImage); xenod then appends the domain's xl.cfg as a
/// trailer, as xl keeps the domain configuration in its save file, so
/// `restore FILE` needs nothing but the file:
///
///     ...image... | config text | config file name | u64 text length | u64 name length | "XENOD-CF"
///
/// The image's own end record says where it ends; the VMM ignores what follows.
extension DomainManager {
    static let trailerMagic = Array("XENOD-CF".utf8)

    /// Saves the domain to `file` (an absolute path) and removes it from
    /// the host: its VMM ends once the image is written.
    public func save(_ name: String, file: String) throws -> String {
        try Self.checkPath(file)
        return try withDomain(name) { d in
            // A PV guest takes a moment to suspend (the VMM waits up to 60 s
            // for it); an HVM guest is stopped where it runs.
            let reply = try control(d, "save \(file)", timeoutSeconds: 90)
            do { try Self.appendTrailer(file: file, configText: d.record.configText, configPath: d.record.configPath) } catch {
                throw HostError("save: the image is written but its configuration could not be added: \(error)")
            }
            // The VMM exits by itself; collect it before forgetting the domain,
            // so the monitor does not take its end for a poweroff.
            if d.isChild { var s: Int32 = 0; waitpid(d.record.pid, &s, 0) }
            else { while kill(d.record.pid, 0) == 0 { usleep(10_000) } }
            forget(d, why: "saved to \(file)")
            return reply
        }
    }

    /// Creates a domain from a file `save` wrote; returns once its VMM answers.
    public func restore(file: String) throws -> Summary {
        try Self.checkPath(file)
        let (configText, configPath) = try Self.readTrailer(file: file)
        let config: XLDomainConfig
        do { config = try XLDomainConfig(path: configPath, text: configText) } catch {
            throw HostError("restore: the saved configuration does not parse: \(error)", status: 400)
        }
        try lock.withLock {
            guard domains[config.name] == nil, !reserved.contains(config.name) else {
                throw HostError("a domain named '\(config.name)' already exists", status: 409)
            }
            reserved.insert(config.name)
        }
        defer { _ = lock.withLock { reserved.remove(config.name) } }
        let id = try store.takeNextID()
        var record = DomainRecord(name: config.name, id: id, configPath: configPath, configText: configText,
                                  pid: 0, controlPath: "\(paths.runDirectory)/\(config.name).ctl",
                                  consolePath: "\(paths.runDirectory)/\(config.name).console", created: Date().timeIntervalSince1970)
        record.pid = try startVMM(config: config, record: record, extraArguments: ["--restore", file])
        let domain = Domain(record: record, config: config, isChild: true)
        try waitUntilAnswering(domain)
        try store.save(record)
        lock.withLock { domains[config.name] = domain }
        log("domain \(config.name) (id \(id)) restored from \(file): VMM pid \(record.pid)")
        return Summary(name: config.name, id: id, pid: record.pid)
    }

    static func checkPath(_ file: String) throws {
        guard file.hasPrefix("/"), file.utf8.count <= 200, file.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
            throw HostError("'\(file.prefix(64))' is not an absolute path of printable characters without spaces (at most 200)", status: 400)
        }
    }

    static func appendTrailer(file: String, configText: String, configPath: String) throws {
        guard let h = FileHandle(forWritingAtPath: file) else { throw HostError("cannot open \(file)") }
        defer { try? h.close() }
        try h.seekToEnd()
        var tail = Data(configText.utf8) + Data(configPath.utf8)
        for n in [UInt64(configText.utf8.count), UInt64(configPath.utf8.count)] {
            withUnsafeBytes(of: n.littleEndian) { tail.append(contentsOf: $0) }
        }
        tail.append(contentsOf: trailerMagic)
        try h.write(contentsOf: tail)
    }

    static func readTrailer(file: String) throws -> (text: String, path: String) {
        guard let h = FileHandle(forReadingAtPath: file) else {
            throw HostError("restore: cannot open \(file): \(String(cString: strerror(errno)))", status: 400)
        }
        defer { try? h.close() }
        let size = try h.seekToEnd()
        func refuse(_ why: String) -> HostError { HostError("restore: \(file): \(why)", status: 400) }
        guard size >= 24 else { throw refuse("too short for a saved domain") }
        try h.seek(toOffset: size - 24)
        let end = [UInt8](try h.read(upToCount: 24) ?? Data())
        guard end.count == 24, Array(end[16...]) == trailerMagic else {
            throw refuse("no domain configuration at its end (not written by xeno save through xenod?)")
        }
        func u64(_ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(end[at + $1]) << (8 * $1) } }
        let textLength = u64(0), pathLength = u64(8)
        guard textLength <= 256 << 10, pathLength <= 4096, textLength + pathLength + 24 <= size else {
            throw refuse("its configuration trailer is malformed")
        }
        try h.seek(toOffset: size - 24 - textLength - pathLength)
        let bytes = try h.read(upToCount: Int(textLength + pathLength)) ?? Data()
        guard bytes.count == Int(textLength + pathLength) else { throw refuse("its configuration trailer is cut short") }
        let text = String(decoding: bytes.prefix(Int(textLength)), as: UTF8.self)
        let path = String(decoding: bytes.dropFirst(Int(textLength)), as: UTF8.self)
        return (text, path)
    }
}
