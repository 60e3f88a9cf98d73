extension XenStoreTree {
    /// Writes what Xen's toolstack (libxl's domain_make and build_post) puts
    /// in the store for a new PV guest, and introduces the domain (fires
    /// `@introduceDomain`). Anything already at `/local/domain/<id>` is
    /// removed first, as libxl does. With `D` = `/local/domain/<id>`:
    ///
    /// | node | value | permissions |
    /// | --- | --- | --- |
    /// | `D` | | `n0 r<id>`: owned by dom0, readable by the guest |
    /// | `D/name`, `D/domid` | name, id | inherited (`n0 r<id>`) |
    /// | `D/vm` (if `uuid`) | `/vm/<uuid>` | inherited; `/vm/<uuid>` has `uuid`, `name`, `n0 r<id>` |
    /// | `D/memory/static-max`, `D/memory/target` | memoryKiB | inherited |
    /// | `D/cpu/<n>/availability` for n < vcpus | `online` below `availableVCPUs` (default all), else `offline` | inherited |
    /// | `D/device` (empty: no devices to probe) | | inherited |
    /// | `D/control` | | inherited |
    /// | `D/control/platform-feature-multiprocessor-suspend` | `1` | inherited |
    /// | `D/control/platform-feature-xs_reset_watches` | `1` | inherited |
    /// | `D/control/shutdown`, `feature-poweroff`, `feature-reboot`, `feature-suspend`, `sysrq` | empty | `n<id>`: the guest's |
    /// | `D/data`, `D/drivers`, `D/feature`, `D/attr`, `D/error` | empty | `n<id>` |
    /// | `D/console` with `limit` 1048576, `type` xenconsoled, `port`/`ring-ref` if given | | `n<id> r0` (a frontend dir) |
    /// | `D/store/port`, `D/store/ring-ref` (if `storeRing`) | | inherited |
    ///
    /// Host-side misuse traps: `id` must be 0...0x7fef, `vcpus` 0...4096,
    /// `name` at most 4096 bytes, `uuid` made of `[0-9A-Za-z-]`.
    public func populateDomain(id: Int, name: String, vcpus: Int, availableVCPUs: Int? = nil, memoryKiB: UInt64,
                               uuid: String? = nil,
                               storeRing: (port: UInt32, frame: UInt64)? = nil,
                               consoleRing: (port: UInt32, frame: UInt64)? = nil) {
        precondition((0..<0x7ff0).contains(id), "domain id \(id) out of range")
        precondition((0...4096).contains(vcpus), "vcpu count \(vcpus) out of range")
        precondition(name.utf8.count <= XenStoreMessage.maxPayload, "domain name too long")
        if let uuid {
            precondition(!uuid.isEmpty && uuid.utf8.allSatisfy { XenStorePath.isNameByte($0) && $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: "@") },
                         "bad uuid \(uuid)")
        }
        let dom = Self.domainPath(id)
        let ro = id == 0
            ? [XenStorePermission(domain: 0, access: .none)]
            : [XenStorePermission(domain: 0, access: .none), XenStorePermission(domain: id, access: .read)]
        let rw = [XenStorePermission(domain: id, access: .none)]
        let frontend = id == 0 ? rw : [XenStorePermission(domain: id, access: .none), XenStorePermission(domain: 0, access: .read)]

        state.withLock { s in
            let limits = s.limits
            // All paths are built here from valid parts and dom0 may do
            // anything, so none of these can fail.
            func apply(_ body: (inout NodeStore) throws(XenStoreError) -> ChangeEvent?) {
                do throws(XenStoreError) {
                    try s.mutate(connection: 0, txID: 0, body)
                } catch {
                    assertionFailure("populateDomain: \(error)")
                }
            }
            func write(_ path: String, _ value: String) {
                apply { st throws(XenStoreError) in try st.write(path, Array(value.utf8), who: .dom0, limits: limits) }
            }
            func mkdir(_ path: String, _ perms: [XenStorePermission]? = nil) {
                apply { st throws(XenStoreError) in try st.mkdir(path, who: .dom0, limits: limits) }
                if let perms {
                    apply { st throws(XenStoreError) in try st.setPermissions(path, perms, who: .dom0, limits: limits) }
                }
            }

            apply { st throws(XenStoreError) in try st.remove(dom, who: .dom0) }
            mkdir(dom, ro)
            write("\(dom)/name", name)
            write("\(dom)/domid", String(id))
            if let uuid {
                let vm = "/vm/\(uuid)"
                mkdir(vm, ro)
                write("\(vm)/uuid", uuid)
                write("\(vm)/name", name)
                write("\(dom)/vm", vm)
            }
            write("\(dom)/memory/static-max", String(memoryKiB))
            write("\(dom)/memory/target", String(memoryKiB))
            for n in 0..<vcpus {
                write("\(dom)/cpu/\(n)/availability", n < (availableVCPUs ?? vcpus) ? "online" : "offline")
            }
            mkdir("\(dom)/device")
            mkdir("\(dom)/control")
            for node in ["shutdown", "feature-poweroff", "feature-reboot", "feature-suspend", "sysrq"] {
                mkdir("\(dom)/control/\(node)", rw)
            }
            write("\(dom)/control/platform-feature-multiprocessor-suspend", "1")
            write("\(dom)/control/platform-feature-xs_reset_watches", "1")
            for node in ["data", "drivers", "feature", "attr", "error"] {
                mkdir("\(dom)/\(node)", rw)
            }
            mkdir("\(dom)/console", frontend)
            write("\(dom)/console/limit", "1048576")
            write("\(dom)/console/type", "xenconsoled")
            if let c = consoleRing {
                write("\(dom)/console/port", String(c.port))
                write("\(dom)/console/ring-ref", String(c.frame))
            }
            if let r = storeRing {
                write("\(dom)/store/port", String(r.port))
                write("\(dom)/store/ring-ref", String(r.frame))
            }
            if s.introduced.insert(UInt16(id)).inserted {
                s.fireSpecial(XenStorePath.introduceDomain)
            }
        }
    }
}
