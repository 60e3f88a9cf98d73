import Testing
@testable import XenStore

@Suite struct PermissionTests {
    func twoGuests() -> (XenStoreTree, Client, Client, Client) {
        let tree = XenStoreTree()
        tree.populateDomain(id: 5, name: "five", vcpus: 1, memoryKiB: 65536)
        tree.populateDomain(id: 6, name: "six", vcpus: 1, memoryKiB: 65536)
        return (tree, Client(tree, domain: 0), Client(tree, domain: 5), Client(tree, domain: 6))
    }

    @Test func guestCannotReadAnotherDomain() {
        let (_, dom0, five, six) = twoGuests()
        #expect(five.read("/local/domain/6/name") == .failure(.EACCES))
        #expect(six.read("/local/domain/5/name") == .failure(.EACCES))
        #expect(five.directory("/local/domain/6") == .failure(.EACCES))
        #expect(five.getPerms("/local/domain/6") == .failure(.EACCES))
        #expect(dom0.read("/local/domain/6/name") == .success("six"))
        #expect(five.read("/local/domain/5/name") == .success("five"))
        // The root and /local/domain are dom0's, unreadable to guests.
        #expect(five.directory("/local/domain") == .failure(.EACCES))
        #expect(five.directory("/") == .failure(.EACCES))
    }

    @Test func missingNodesDoNotLeakExistence() {
        let (_, _, five, _) = twoGuests()
        // Under a node the guest cannot read: EACCES, not ENOENT.
        #expect(five.read("/local/domain/6/nothing") == .failure(.EACCES))
        #expect(five.read("/local/domain/6/nothing/deeper") == .failure(.EACCES))
        // Under its own readable tree: ENOENT.
        #expect(five.read("nothing") == .failure(.ENOENT))
    }

    @Test func guestWritesOnlyWhereAllowed() throws {
        let (tree, _, five, _) = twoGuests()
        // Toolstack-owned, read-only to the guest.
        #expect(five.write("name", "evil") == .EACCES)
        #expect(five.write("memory/target", "1") == .EACCES)
        #expect(five.write("newnode", "x") == .EACCES)  // parent is dom0's
        #expect(five.rm("name") == .EACCES)
        #expect(five.write("/local/domain/6/data/x", "x") == .EACCES)
        #expect(five.write("/tool/x", "x") == .EACCES)
        // Guest-owned subtrees.
        #expect(five.write("control/feature-poweroff", "1") == nil)
        #expect(five.write("data/a/b", "1") == nil)
        #expect(try tree.permissions("/local/domain/5/data/a/b") == [XenStorePermission(domain: 5, access: .none)])
        #expect(five.rm("data/a") == nil)
    }

    @Test func newNodesInheritParentPermissions() throws {
        let tree = XenStoreTree()
        try tree.mkdir("/share")
        try tree.setPermissions("/share", [XenStorePermission(domain: 0, access: .read), XenStorePermission(domain: 9, access: .readWrite)])
        // dom0 creates: inherits as is.
        try tree.write("/share/a/b", "1")
        #expect(try tree.permissions("/share/a/b") == [XenStorePermission(domain: 0, access: .read), XenStorePermission(domain: 9, access: .readWrite)])
        // A guest with write access creates: inherits, but owns what it creates
        // (the owner's id changes; the default access stays).
        let nine = Client(tree, domain: 9)
        #expect(nine.write("/share/c/d", "2") == nil)
        #expect(nine.getPerms("/share/c") == .success(["r9", "b9"]))
        #expect(nine.getPerms("/share/c/d") == .success(["r9", "b9"]))
        // Default access "r" lets anyone read the dom0-owned part.
        let other = Client(tree, domain: 4)
        #expect(other.read("/share/a/b") == .success("1"))
        #expect(other.write("/share/a/b", "x") == .EACCES)
    }

    @Test func aclEntries() {
        let (_, dom0, five, six) = twoGuests()
        #expect(five.write("data/shared", "hi") == nil)
        #expect(six.read("/local/domain/5/data/shared") == .failure(.EACCES))
        // The owner grants domain 6 read access.
        #expect(five.setPerms("data/shared", ["n5", "r6"]) == nil)
        #expect(six.read("/local/domain/5/data/shared") == .success("hi"))
        #expect(six.write("/local/domain/5/data/shared", "no") == .EACCES)
        #expect(five.setPerms("data/shared", ["n5", "w6"]) == nil)
        #expect(six.write("/local/domain/5/data/shared", "yes") == nil)
        #expect(six.read("/local/domain/5/data/shared") == .failure(.EACCES))
        #expect(dom0.read("/local/domain/5/data/shared") == .success("yes"))
    }

    @Test func setPermsRules() {
        let (_, dom0, five, six) = twoGuests()
        #expect(five.write("data/p", "1") == nil)
        #expect(five.getPerms("data/p") == .success(["n5"]))
        // Owner may change access but not give the node away.
        #expect(five.setPerms("data/p", ["r5", "b6"]) == nil)
        #expect(five.getPerms("data/p") == .success(["r5", "b6"]))
        #expect(five.setPerms("data/p", ["n6"]) == .EPERM)
        // A non-owner with write access still may not change permissions.
        #expect(six.setPerms("/local/domain/5/data/p", ["b6"]) == .EACCES)
        // Guests cannot set permissions on the toolstack's nodes.
        #expect(five.setPerms("name", ["b5"]) == .EACCES)
        // dom0 may give it away.
        #expect(dom0.setPerms("/local/domain/5/data/p", ["n6"]) == nil)
        #expect(five.read("data/p") == .failure(.EACCES))
        // Malformed lists.
        #expect(dom0.setPerms("/local/domain/5/data/p", ["x6"]) == .EINVAL)
        #expect(dom0.setPerms("/local/domain/5/data/p", ["r"]) == .EINVAL)
        #expect(dom0.setPerms("/local/domain/5/data/p", ["r70000"]) == .EINVAL)
        #expect(dom0.setPerms("/local/domain/5/data/p", []) == .EINVAL)
        #expect(dom0.setPerms("/local/domain/5/data/nothing", ["n0"]) == .ENOENT)
    }

    @Test func nodeQuota() throws {
        var limits = XenStoreLimits()
        limits.nodesPerDomain = 20
        let tree = XenStoreTree(limits: limits)
        try tree.mkdir("/local/domain/5/data")
        try tree.setPermissions("/local/domain/5/data", [XenStorePermission(domain: 5, access: .none)])
        let five = Client(tree, domain: 5)
        let base = tree.nodesOwned(by: 5)
        #expect(base == 1)
        for i in 0..<(20 - base) {
            #expect(five.write("data/n\(i)", "x") == nil)
        }
        #expect(five.write("data/one-more", "x") == .ENOSPC)
        #expect(five.write("data/a/b/c", "x") == .ENOSPC)
        #expect(tree.nodesOwned(by: 5) == 20)
        #expect(five.rm("data/n0") == nil)
        #expect(five.write("data/one-more", "x") == nil)
        // dom0 is not limited.
        for i in 0..<50 { try tree.write("/dom0/\(i)", "x") }
    }

    @Test func guestValueSize() {
        let (_, dom0, five, _) = twoGuests()
        #expect(five.write("data/big", String(repeating: "v", count: 2048)) == nil)
        #expect(five.write("data/big", String(repeating: "v", count: 2049)) == .ENOSPC)
        #expect(dom0.write("/big", String(repeating: "v", count: 4000)) == nil)
    }

    @Test func privilegedOperations() {
        let (tree, dom0, five, _) = twoGuests()
        #expect(five.call(.introduce, "9", "1234", "3").payloadStrings == ["EACCES"])
        #expect(five.call(.release, "6").payloadStrings == ["EACCES"])
        #expect(five.call(.isDomainIntroduced, "6").payloadStrings == ["EACCES"])
        #expect(five.call(.setTarget, "5", "6").payloadStrings == ["EACCES"])
        #expect(five.call(.control, "print", "x").payloadStrings == ["EACCES"])
        #expect(dom0.call(.control, "print", "x").payloadStrings == ["ENOSYS"])
        #expect(dom0.call(.isDomainIntroduced, "6").payloadStrings == ["T"])
        #expect(dom0.call(.isDomainIntroduced, "9").payloadStrings == ["F"])
        #expect(dom0.call(.introduce, "9", "1234", "3").payloadStrings == ["OK"])
        #expect(tree.isDomainIntroduced(9))
        #expect(dom0.call(.resume, "9").payloadStrings == ["OK"])
        #expect(dom0.call(.release, "9").payloadStrings == ["OK"])
        #expect(dom0.call(.release, "9").payloadStrings == ["ENOENT"])
        #expect(dom0.call(.introduce, "x", "1", "2").payloadStrings == ["EINVAL"])
        #expect(!tree.isDomainIntroduced(9))
    }

    @Test func setTargetGivesTheTargetsRights() {
        let (_, dom0, five, six) = twoGuests()
        #expect(six.read("/local/domain/5/name") == .failure(.EACCES))
        #expect(dom0.call(.setTarget, "6", "5").payloadStrings == ["OK"])
        #expect(six.read("/local/domain/5/name") == .success("five"))
        #expect(six.write("/local/domain/5/data/x", "1") == nil)
        #expect(five.read("/local/domain/6/name") == .failure(.EACCES))
    }
}
