import Foundation
import XLConfig

/// What xenod keeps about a domain in its state directory, one JSON file a
/// domain, written whole to a temporary name and renamed into place, so a
/// crash never leaves half a record: the configuration it was created from
/// and the VMM process running it. A restarted xenod reads these back and
/// re-adopts the VMMs that are still alive.
struct DomainRecord: Codable, Sendable {
    var name: String
    var id: Int
    /// Where the configuration came from (for messages) and its text.
    var configPath: String
    var configText: String
    /// The VMM process (`xeno run`), its control socket and console log.
    var pid: Int32
    var controlPath: String
    var consolePath: String
    /// Seconds since 1970 when the domain was created.
    var created: Double
    /// Credit scheduler settings now in force (from the configuration, then
    /// `sched-credit`); nil in records written before they were kept.
    var weight: Int?
    var cap: Int?
    /// `mem-max`: the most memory the balloon may give the guest (MiB),
    /// when lowered below the boot size.
    var maxMemoryMiB: Int?
}

/// The state directory: domain records and the next domain ID.
struct DomainStore: Sendable {
    let directory: String

    init(directory: String) throws {
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory + "/domains", withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
    }

    private func path(_ name: String) -> String { "\(directory)/domains/\(name).json" }

    func save(_ record: DomainRecord) throws {
        let data = try JSONEncoder().encode(record)
        try write(data, to: path(record.name))
    }

    func remove(_ name: String) {
        unlink(path(name))
    }

    func loadAll() -> [DomainRecord] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory + "/domains")) ?? []
        return names.filter { $0.hasSuffix(".json") }.sorted().compactMap { file in
            guard let data = FileManager.default.contents(atPath: "\(directory)/domains/\(file)") else { return nil }
            return try? JSONDecoder().decode(DomainRecord.self, from: data)
        }
    }

    /// Domain IDs are never reused while the state directory lives, as in Xen.
    func takeNextID() throws -> Int {
        let file = directory + "/next-id"
        let current = (try? String(contentsOfFile: file, encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 1
        try write(Data("\(current + 1)\n".utf8), to: file)
        return current
    }

    private func write(_ data: Data, to target: String) throws {
        let temporary = target + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw HostError("cannot write \(temporary): \(String(cString: strerror(errno)))")
        }
        guard rename(temporary, target) == 0 else {
            throw HostError("cannot rename \(temporary) to \(target): \(String(cString: strerror(errno)))")
        }
    }
}

/// A refused or failed request: the message a user sees, and the HTTP
/// status it maps to.
public struct HostError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public let status: Int
    init(_ description: String, status: Int = 500) {
        self.description = description
        self.status = status
    }
}
