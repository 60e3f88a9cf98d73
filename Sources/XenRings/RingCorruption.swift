/// A frontend broke a ring's framing: the backend disconnects the device
/// (as Xen's do) rather than guess what the guest meant.
public struct RingCorruption: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Ring: Sendable { case block, transmit, receive }
    public let ring: Ring
    /// The request producer index the guest published, and what we had consumed.
    public let produced: UInt32
    public let consumed: UInt32

    public init(ring: Ring, produced: UInt32, consumed: UInt32) {
        self.ring = ring
        self.produced = produced
        self.consumed = consumed
    }

    public var description: String {
        let name = switch ring { case .block: "" case .transmit: "transmit " case .receive: "receive " }
        return "the frontend's \(name)ring is corrupt (request index \(produced), \(consumed) consumed)"
    }
}
