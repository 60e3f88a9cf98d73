import Testing
@testable import XenStore

@Suite struct ConcurrencyTests {
    /// Several clients on several threads increment one counter in
    /// transactions, retrying on EAGAIN, while also writing their own nodes
    /// and watching each other: no increment may be lost.
    @Test func concurrentTransactionsDoNotLoseUpdates() async throws {
        let tree = XenStoreTree()
        try tree.write("/c/counter", "0")
        let workers = 4
        let increments = 200
        let retries = await withTaskGroup(of: Int.self) { group in
            for w in 0..<workers {
                group.addTask {
                    let c = Client(tree, domain: 0)
                    _ = c.watch("/c", "w\(w)")
                    var retries = 0
                    for i in 0..<increments {
                        _ = c.write("/c/\(w)/\(i % 10)", "\(i)")
                        while true {
                            guard let tx = c.start() else { continue }
                            let v = Int((try? c.read("/c/counter", tx: tx).get()) ?? "") ?? -1_000_000
                            _ = c.write("/c/counter", String(v + 1), tx: tx)
                            if c.end(tx, commit: true) == nil { break }
                            retries += 1
                        }
                        _ = c.pollEvents()
                    }
                    c.conn.close()
                    return retries
                }
            }
            var total = 0
            for await r in group { total += r }
            return total
        }
        #expect(try tree.readString("/c/counter") == String(workers * increments))
        #expect(try tree.directory("/c").count == workers + 1)
        _ = retries  // how many conflicts happened depends on scheduling
    }
}
