import Glibc
import Testing
@testable import XenStore

/// A test client on one connection: sends requests, returns the reply and
/// keeps any watch events that arrive in between.
final class Client {
    let conn: XenStoreConnection
    var events: [(path: String, token: String)] = []
    var nextReqID: UInt32 = 1

    init(_ tree: XenStoreTree, domain: Int) {
        conn = XenStoreConnection(tree: tree, domainID: domain)
    }

    /// Sends one request and returns its reply (events are kept in `events`).
    @discardableResult
    func call(_ type: XenStoreMessageType, payload: [UInt8], tx: UInt32 = 0) -> XenStoreMessage {
        let id = nextReqID
        nextReqID &+= 1
        conn.handle(XenStoreMessage(type: type, reqID: id, txID: tx, payload: payload))
        var reply: XenStoreMessage? = nil
        for m in conn.drainMessages() {
            if m.type == .watchEvent {
                let s = m.payloadStrings
                events.append((s.first ?? "", s.count > 1 ? s[1] : ""))
            } else {
                precondition(reply == nil, "two replies")
                precondition(m.reqID == id && m.txID == tx, "reply header mismatch")
                reply = m
            }
        }
        return reply!
    }

    @discardableResult
    func call(_ type: XenStoreMessageType, _ strings: String..., tx: UInt32 = 0) -> XenStoreMessage {
        call(type, payload: XenStoreMessage(type: type, strings: strings).payload, tx: tx)
    }

    /// Picks up events queued by other connections' changes.
    func pollEvents() -> [(path: String, token: String)] {
        for m in conn.drainMessages() where m.type == .watchEvent {
            let s = m.payloadStrings
            events.append((s.first ?? "", s.count > 1 ? s[1] : ""))
        }
        defer { events = [] }
        return events
    }

    func read(_ path: String, tx: UInt32 = 0) -> Result<String, XenStoreError> {
        result(call(.read, path, tx: tx)).map { String(decoding: $0, as: UTF8.self) }
    }

    func write(_ path: String, _ value: String, tx: UInt32 = 0) -> XenStoreError? {
        var p = Array(path.utf8) + [0]
        p.append(contentsOf: value.utf8)
        return error(call(.write, payload: p, tx: tx))
    }

    func mkdir(_ path: String, tx: UInt32 = 0) -> XenStoreError? { error(call(.mkdir, path, tx: tx)) }
    func rm(_ path: String, tx: UInt32 = 0) -> XenStoreError? { error(call(.rm, path, tx: tx)) }

    func directory(_ path: String, tx: UInt32 = 0) -> Result<[String], XenStoreError> {
        result(call(.directory, path, tx: tx)).map { XenStoreMessage(type: .directory, payload: $0).payloadStrings }
    }

    func getPerms(_ path: String) -> Result<[String], XenStoreError> {
        result(call(.getPerms, path)).map { XenStoreMessage(type: .getPerms, payload: $0).payloadStrings }
    }

    func setPerms(_ path: String, _ perms: [String]) -> XenStoreError? {
        error(call(.setPerms, payload: XenStoreMessage(type: .setPerms, strings: [path] + perms).payload))
    }

    func watch(_ path: String, _ token: String) -> XenStoreError? { error(call(.watch, path, token)) }
    func unwatch(_ path: String, _ token: String) -> XenStoreError? { error(call(.unwatch, path, token)) }

    func start() -> UInt32? {
        guard case .success(let p) = result(call(.transactionStart, "")) else { return nil }
        return UInt32(String(decoding: p.prefix { $0 != 0 }, as: UTF8.self))
    }

    func end(_ tx: UInt32, commit: Bool) -> XenStoreError? {
        error(call(.transactionEnd, commit ? "T" : "F", tx: tx))
    }

    func result(_ m: XenStoreMessage) -> Result<[UInt8], XenStoreError> {
        if m.type == .error {
            return .failure(XenStoreError(rawValue: String(decoding: m.payload.prefix { $0 != 0 }, as: UTF8.self)) ?? .EIO)
        }
        return .success(m.payload)
    }

    func error(_ m: XenStoreMessage) -> XenStoreError? {
        if case .failure(let e) = result(m) { return e }
        #expect(m.payload == Array("OK".utf8) + [0])
        return nil
    }
}

/// A guest's view of a xenstore page: it produces requests and consumes replies.
final class GuestSide {
    let page: UnsafeMutableRawPointer

    init() {
        page = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
        XenStoreRing.initialize(page: page)
    }

    deinit { page.deallocate() }

    func u32(_ off: Int) -> UInt32 { page.load(fromByteOffset: off, as: UInt32.self) }
    func set(_ off: Int, _ v: UInt32) { page.storeBytes(of: v, toByteOffset: off, as: UInt32.self) }

    var reqCons: UInt32 { get { u32(2048) } set { set(2048, newValue) } }
    var reqProd: UInt32 { get { u32(2052) } set { set(2052, newValue) } }
    var rspCons: UInt32 { get { u32(2056) } set { set(2056, newValue) } }
    var rspProd: UInt32 { get { u32(2060) } set { set(2060, newValue) } }
    var errorField: UInt32 { u32(2072) }

    /// Writes as many of `bytes` as the request ring has room for; returns how many.
    @discardableResult
    func send<C: Collection>(_ bytes: C) -> Int where C.Element == UInt8 {
        let free = 1024 - Int(reqProd &- reqCons)
        let n = min(free, bytes.count)
        var prod = reqProd
        for b in bytes.prefix(n) {
            page.storeBytes(of: b, toByteOffset: Int(prod & 1023), as: UInt8.self)
            prod &+= 1
        }
        reqProd = prod
        return n
    }

    /// Writes `bytes` at req_prod without looking at req_cons.
    func sendRaw(_ bytes: [UInt8]) {
        var prod = reqProd
        for b in bytes {
            page.storeBytes(of: b, toByteOffset: Int(prod & 1023), as: UInt8.self)
            prod &+= 1
        }
        reqProd = prod
    }

    /// Takes every reply byte available.
    func receive(max: Int = .max) -> [UInt8] {
        var out: [UInt8] = []
        var cons = rspCons
        let avail = Int(rspProd &- cons)
        for _ in 0..<min(avail, max) {
            out.append(page.load(fromByteOffset: 1024 + Int(cons & 1023), as: UInt8.self))
            cons &+= 1
        }
        rspCons = cons
        return out
    }
}

/// Splits a byte stream of replies into messages.
func messages(in bytes: [UInt8]) -> [XenStoreMessage] {
    var out: [XenStoreMessage] = []
    var rest = bytes[...]
    while let (m, n) = try? XenStoreMessage.parse(Array(rest)) {
        out.append(m)
        rest = rest.dropFirst(n)
    }
    return out
}

/// SplitMix64: deterministic, seedable.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// `ring.service(connection:)` as a plain function call (#expect cannot call mutating members).
func serviced(_ ring: inout XenStoreRing, _ c: XenStoreConnection) -> Bool {
    ring.service(connection: c)
}
