import XenBackends

/// A PV guest's device I/O for the control socket's `stats`: blkback's
/// and netback's counters, summed over the guest's disks and NICs.
/// (HVM's virtio devices keep no byte counts yet: their guests report none.)
struct DeviceCounters: Sendable {
    let disks: [BlockBackend]
    let nics: [NetBackend]

    /// `key=value` words; net directions are the guest's (rx: to the guest).
    var words: String {
        func sum(_ values: [Int]) -> Int { values.reduce(0, &+) }
        let r = sum(disks.map { $0.counters.readRequests.load(ordering: .relaxed) })
        let w = sum(disks.map { $0.counters.writeRequests.load(ordering: .relaxed) })
        let rb = sum(disks.map { $0.counters.bytesRead.load(ordering: .relaxed) })
        let wb = sum(disks.map { $0.counters.bytesWritten.load(ordering: .relaxed) })
        let rx = sum(nics.map { $0.bytesReceived.load(ordering: .relaxed) })
        let tx = sum(nics.map { $0.bytesSent.load(ordering: .relaxed) })
        let rxp = sum(nics.map { $0.packetsReceived.load(ordering: .relaxed) })
        let txp = sum(nics.map { $0.packetsSent.load(ordering: .relaxed) })
        let drop = sum(nics.map { $0.droppedPackets.load(ordering: .relaxed) })
        return "disks=\(disks.count) block-read-requests=\(r) block-write-requests=\(w) block-read-bytes=\(rb) block-write-bytes=\(wb)"
            + " nics=\(nics.count) net-rx-bytes=\(rx) net-tx-bytes=\(tx) net-rx-packets=\(rxp) net-tx-packets=\(txp) net-dropped-packets=\(drop)"
    }
}
