import Testing
@testable import Virtio

@Suite struct ConfigurationTests {
    private func queue(memorySize: Int = 1 << 16, maxSize: UInt16 = 256) -> Virtqueue<HeapGuestMemory> {
        Virtqueue(memory: HeapGuestMemory(size: memorySize), maxSize: maxSize)
    }

    private func configure(
        _ q: Virtqueue<HeapGuestMemory>, size: UInt16 = 16,
        descriptorTable: UInt64 = 0x1000, driverArea: UInt64 = 0x2000, deviceArea: UInt64 = 0x3000
    ) {
        q.configuration = VirtqueueConfiguration(
            size: size, descriptorTable: descriptorTable, driverArea: driverArea, deviceArea: deviceArea)
    }

    private func enableError(_ q: Virtqueue<HeapGuestMemory>) -> VirtqueueError? {
        do {
            try q.enable()
            return nil
        } catch {
            return error
        }
    }

    @Test func enablesAlignedRingsInMemory() throws {
        let q = queue()
        #expect(!q.isReady)
        configure(q)
        try q.enable()
        #expect(q.isReady)
        #expect(!q.needsReset)
        #expect(q.popAvailable().isEmpty)
    }

    @Test func acceptsRingsEndingExactlyAtTheEndOfMemory() throws {
        let q = queue(memorySize: 0x4000)
        let availLength = VirtqueueArea.driverArea.length(forSize: 16)  // 38
        configure(q, driverArea: 0x4000 - availLength)
        try q.enable()
        #expect(q.isReady)
    }

    @Test(arguments: [0, 3, 6, 100, 0x8001] as [UInt16])
    func refusesSizesThatAreNotPowersOfTwo(size: UInt16) {
        let q = queue(maxSize: 32768)
        configure(q, size: size)
        #expect(enableError(q) == .sizeNotPowerOfTwo(size))
        #expect(!q.isReady)
    }

    @Test func refusesSizesAboveTheDeviceMaximum() {
        let q = queue(maxSize: 64)
        configure(q, size: 128)
        #expect(enableError(q) == .sizeTooLarge(128, maximum: 64))
    }

    @Test func roundsTheMaximumDownToAPowerOfTwo() {
        #expect(queue(maxSize: 300).maxSize == 256)
        #expect(queue(maxSize: 0).maxSize == 1)
        #expect(queue(maxSize: 0xFFFF).maxSize == 32768)
        #expect(queue(maxSize: 32768).maxSize == 32768)
    }

    @Test func refusesAMisalignedDescriptorTable() {
        let q = queue()
        configure(q, descriptorTable: 0x1008)
        #expect(enableError(q) == .areaMisaligned(.descriptorTable, address: 0x1008))
    }

    @Test func refusesAMisalignedDriverArea() {
        let q = queue()
        configure(q, driverArea: 0x2001)
        #expect(enableError(q) == .areaMisaligned(.driverArea, address: 0x2001))
    }

    @Test func refusesAMisalignedDeviceArea() {
        let q = queue()
        configure(q, deviceArea: 0x3002)
        #expect(enableError(q) == .areaMisaligned(.deviceArea, address: 0x3002))
        #expect(!q.isReady)
    }

    @Test func acceptsTheMinimumAlignments() throws {
        let q = queue()
        configure(q, descriptorTable: 0x1010, driverArea: 0x2002, deviceArea: 0x3004)
        try q.enable()
        #expect(q.isReady)
    }

    @Test func refusesAreasReachingPastGuestMemory() {
        let q = queue(memorySize: 0x4000)
        configure(q, deviceArea: 0x3FFC)
        #expect(enableError(q) == .areaOutsideGuestMemory(.deviceArea, address: 0x3FFC, length: 134))
        configure(q, descriptorTable: 0x4000)
        #expect(enableError(q) == .areaOutsideGuestMemory(.descriptorTable, address: 0x4000, length: 256))
    }

    @Test func refusesAreasWhoseEndOverflows() {
        let q = queue()
        let nearTop = UInt64.max - 15  // 16-aligned; + 256 bytes wraps around
        configure(q, descriptorTable: nearTop)
        #expect(enableError(q) == .areaOutsideGuestMemory(.descriptorTable, address: nearTop, length: 256))
        configure(q, driverArea: UInt64.max - 1)
        #expect(enableError(q) == .areaOutsideGuestMemory(.driverArea, address: UInt64.max - 1, length: 38))
    }

    @Test func reconfiguringDisablesTheQueue() throws {
        let q = queue()
        configure(q)
        try q.enable()
        q.configuration.deviceArea = 0x3100
        #expect(!q.isReady)
        #expect(q.popAvailable().failure == .notReady)
        try q.enable()
        #expect(q.isReady)
    }

    @Test func resetRestoresTheDefaults() throws {
        let q = queue()
        configure(q)
        try q.enable()
        q.reset()
        #expect(!q.isReady)
        #expect(q.configuration == VirtqueueConfiguration(size: 256))
        #expect(q.popAvailable().failure == .notReady)
    }

    @Test func aDisabledQueueRefusesWork() {
        let q = queue()
        #expect(q.popAvailable().failure == .notReady)
        #expect(throws: VirtqueueError.notReady) { try q.pushUsed(id: 0, length: 0) }
        #expect(!q.needsNotification())
        #expect(!q.enableNotifications())
    }

    @Test func featuresComeFromTheNegotiatedWord() {
        let word: UInt64 = (1 << 28) | (1 << 29) | (1 << 32) | 1
        #expect(VirtqueueFeatures(negotiated: word) == [.indirectDescriptors, .eventIndex])
        #expect(VirtqueueFeatures(negotiated: 1 << 29) == .eventIndex)
    }

    @Test func errorsDescribeThemselves() {
        let position = DescriptorPosition(head: 7, index: 7)
        #expect(VirtqueueError.bufferOutsideGuestMemory(position, address: 0xdead_0000, length: 0x200).description
            == "descriptor 7 points outside guest memory (0xdead0000 + 0x200)")
        let inner = DescriptorPosition(head: 2, index: 3, indirectTable: 5)
        #expect(VirtqueueError.nestedIndirect(inner).description
            == "indirect descriptor 3 (table of descriptor 5, chain 2) points at an indirect table from within an indirect table")
        #expect(VirtqueueError.areaMisaligned(.deviceArea, address: 0x3002).description
            == "device area (used ring) at 0x3002 is not 4-byte aligned")
        #expect(VirtqueueError.availIndexRanAhead(availIndex: 40, lastSeen: 3, size: 16).requiresReset)
        #expect(!VirtqueueError.descriptorLoop(head: 0, tableSize: 8).requiresReset)
    }
}
