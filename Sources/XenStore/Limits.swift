/// Bounds on what one guest can make the store hold. Domain 0 is exempt from
/// the node quota and value size (it is the host); the per-connection
/// bounds apply to every connection.
public struct XenStoreLimits: Sendable {
    /// Nodes a guest domain may own (xenstored's quota-nr-entries is 1000; the
    /// brief asks for room to grow).
    public var nodesPerDomain: Int = 10_000
    /// Watches per connection (more: E2BIG).
    public var watchesPerConnection: Int = 128
    /// Open transactions per connection (more: ENOSPC).
    public var transactionsPerConnection: Int = 16
    /// Largest value a guest may write (xenstored's quota-entry-size).
    public var maxGuestValueSize: Int = 2048
    /// Queued output (replies and events) per connection beyond which new
    /// watch events for it are dropped and counted. Replies are never dropped;
    /// the ring stops taking requests while output is above `XenStoreRing.outputHighWater`.
    public var maxQueuedOutputBytes: Int = 1 << 20
    /// Longest watch token: a watch event carries a path of up to
    /// XENSTORE_ABS_PATH_MAX and the token, and must fit XENSTORE_PAYLOAD_MAX.
    public var maxWatchTokenLength: Int = XenStoreMessage.maxPayload - XenStorePath.absoluteMax - 2

    public init() {}
}
