import Testing
@testable import XenStore

@Suite struct DomainTests {
    @Test func defaultsForAPVGuest() throws {
        let tree = XenStoreTree()
        tree.populateDomain(id: 3, name: "web", vcpus: 2, memoryKiB: 524_288,
                            uuid: "6f1c2a9e-0c1d-4b8e-9a3f-2d7c5e8b1a00",
                            storeRing: (port: 1, frame: 0x1234), consoleRing: (port: 2, frame: 0x1235))
        let d = "/local/domain/3"
        func value(_ p: String) throws -> String { try tree.readString("\(d)/\(p)") }
        #expect(try value("name") == "web")
        #expect(try value("domid") == "3")
        #expect(try value("vm") == "/vm/6f1c2a9e-0c1d-4b8e-9a3f-2d7c5e8b1a00")
        #expect(try tree.readString("/vm/6f1c2a9e-0c1d-4b8e-9a3f-2d7c5e8b1a00/name") == "web")
        #expect(try value("memory/target") == "524288")
        #expect(try value("memory/static-max") == "524288")
        #expect(try tree.directory("\(d)/cpu") == ["0", "1"])
        #expect(try value("cpu/0/availability") == "online")
        #expect(try value("cpu/1/availability") == "online")
        #expect(try tree.directory("\(d)/device") == [])
        #expect(try value("control/platform-feature-multiprocessor-suspend") == "1")
        #expect(try value("control/platform-feature-xs_reset_watches") == "1")
        #expect(try value("control/shutdown") == "")
        #expect(try value("store/port") == "1")
        #expect(try value("store/ring-ref") == "4660")
        #expect(try value("console/port") == "2")
        #expect(try value("console/ring-ref") == "4661")
        #expect(try value("console/limit") == "1048576")
        #expect(try value("console/type") == "xenconsoled")
        #expect(tree.isDomainIntroduced(3))

        let ro = [XenStorePermission(domain: 0, access: .none), XenStorePermission(domain: 3, access: .read)]
        let rw = [XenStorePermission(domain: 3, access: .none)]
        #expect(try tree.permissions(d) == ro)
        #expect(try tree.permissions("\(d)/memory/target") == ro)
        #expect(try tree.permissions("\(d)/device") == ro)
        #expect(try tree.permissions("\(d)/control") == ro)
        for p in ["control/shutdown", "control/feature-poweroff", "control/feature-reboot", "control/feature-suspend",
                  "control/sysrq", "data", "drivers", "feature", "attr", "error"] {
            #expect(try tree.permissions("\(d)/\(p)") == rw, "\(p)")
        }
        #expect(try tree.permissions("\(d)/console") == [XenStorePermission(domain: 3, access: .none), XenStorePermission(domain: 0, access: .read)])
    }

    @Test func minimalCallWithoutOptionalParts() throws {
        let tree = XenStoreTree()
        tree.populateDomain(id: 1, name: "g", vcpus: 1, memoryKiB: 1024)
        #expect(try tree.directory("/local/domain/1/cpu") == ["0"])
        #expect(!tree.exists("/local/domain/1/store"))
        #expect(!tree.exists("/local/domain/1/vm"))
        #expect(try tree.directory("/local/domain/1/console") == ["limit", "type"])
    }

    @Test func repopulateStartsClean() throws {
        let tree = XenStoreTree()
        tree.populateDomain(id: 4, name: "a", vcpus: 4, memoryKiB: 1024)
        try tree.write("/local/domain/4/data/leftover", "x", as: 4)
        tree.populateDomain(id: 4, name: "b", vcpus: 1, memoryKiB: 2048)
        #expect(!tree.exists("/local/domain/4/data/leftover"))
        #expect(try tree.directory("/local/domain/4/cpu") == ["0"])
        #expect(try tree.readString("/local/domain/4/name") == "b")
    }

    /// What Linux's xenbus does at boot of a PV domU with no devices, through the ring.
    @Test func linuxStartupSequenceOverTheRing() {
        let tree = XenStoreTree()
        tree.populateDomain(id: 1, name: "debian", vcpus: 2, memoryKiB: 1_048_576)
        let conn = XenStoreConnection(tree: tree, domainID: 1)
        let g = GuestSide()
        var ring = XenStoreRing(page: g.page)
        var req: UInt32 = 0
        func call(_ type: XenStoreMessageType, _ payload: [UInt8]) -> (XenStoreMessage, [XenStoreMessage]) {
            req += 1
            g.send(XenStoreMessage(type: type, reqID: req, payload: payload).encoded())
            _ = ring.service(connection: conn)
            let all = messages(in: g.receive())
            let replies = all.filter { $0.type != .watchEvent }
            #expect(replies.count == 1)
            #expect(replies.first?.reqID == req)
            return (replies.first ?? XenStoreMessage(type: .invalid), all.filter { $0.type == .watchEvent })
        }
        func strings(_ s: String...) -> [UInt8] { s.flatMap { bytes($0) + [0] } }

        // Frontend bus: watch "device", list it.
        var (r, ev) = call(.watch, strings("device", "FFFF888003C00000"))
        #expect(r.payloadStrings == ["OK"])
        #expect(ev.map(\.payloadStrings) == [["device", "FFFF888003C00000"]])
        (r, _) = call(.directory, strings("device"))
        #expect(r.type == .directory && r.payload.isEmpty)
        // Shutdown and sysrq watches, balloon target, vCPU hotplug.
        for (p, t) in [("control/shutdown", "a"), ("control/sysrq", "b"), ("memory/target", "c"), ("cpu", "d")] {
            (r, ev) = call(.watch, strings(p, t))
            #expect(r.payloadStrings == ["OK"])
            #expect(ev.count == 1)
        }
        (r, _) = call(.read, strings("control/shutdown"))
        #expect(r.type == .read && r.payload.isEmpty)
        (r, _) = call(.read, strings("memory/static-max"))
        #expect(r.payload == bytes("1048576"))
        (r, _) = call(.read, strings("cpu/1/availability"))
        #expect(r.payload == bytes("online"))
        for f in ["feature-poweroff", "feature-reboot", "feature-suspend"] {
            (r, _) = call(.write, bytes("control/\(f)") + [0] + bytes("1"))
            #expect(r.payloadStrings == ["OK"])
        }
        // A transaction as xenbus_switch_state would use.
        (r, _) = call(.transactionStart, [0])
        let tx = UInt32(r.payloadStrings.first ?? "") ?? 0
        #expect(tx != 0)
        req += 1
        g.send(XenStoreMessage(type: .read, reqID: req, txID: tx, payload: strings("control/feature-poweroff")).encoded())
        _ = ring.service(connection: conn)
        #expect(messages(in: g.receive()).first?.payload == bytes("1"))
        req += 1
        g.send(XenStoreMessage(type: .transactionEnd, reqID: req, txID: tx, payload: strings("T")).encoded())
        _ = ring.service(connection: conn)
        #expect(messages(in: g.receive()).first?.payloadStrings == ["OK"])
        // The toolstack asks for a shutdown: the guest hears of it.
        try? tree.write("/local/domain/1/control/shutdown", "poweroff")
        #expect(serviced(&ring, conn))
        #expect(messages(in: g.receive()).map(\.payloadStrings) == [["control/shutdown", "a"]])
        #expect(ring.failure == nil)
    }
}
