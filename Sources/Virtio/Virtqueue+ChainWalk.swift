extension Virtqueue {
    /// Follows the chain starting at descriptor `head` (already checked to be
    /// in the table), checking each descriptor before recording its buffer.
    ///
    /// Refuses: NEXT beyond the table; more hops than the table has entries
    /// (a loop); INDIRECT without the feature, inside an indirect table, with
    /// NEXT, or with a table length that is not a positive multiple of 16; a
    /// readable buffer after a writable one; more bytes than
    /// `limits.maxChainBytes` or more buffers than `limits.maxSegments`; and
    /// any buffer or table not wholly in guest memory.
    func walkChain(from head: UInt16, in ring: SplitRing) throws(VirtqueueError) -> DescriptorChain {
        let allowsIndirect = features.contains(.indirectDescriptors)
        let maxChainBytes = limits.maxChainBytes
        var table = UnsafeRawPointer(ring.descriptors)
        var tableSize = Int(ring.size)
        var indirectTable: UInt16? = nil
        var index = head
        var visited = 0
        var count = 0
        var readableCount = 0
        var readableLength: UInt64 = 0
        var writableLength: UInt64 = 0

        while true {
            // A chain that visits more descriptors than its table holds must
            // revisit one: refuse before the guest can make us spin.
            visited += 1
            guard visited <= tableSize else { throw .descriptorLoop(head: head, tableSize: tableSize) }
            let position = DescriptorPosition(head: head, index: index, indirectTable: indirectTable)
            let descriptor = Descriptor(loadingFrom: table + Int(index) * Int(SplitRing.descriptorSize))

            if descriptor.isIndirect {
                guard allowsIndirect else { throw .indirectNotNegotiated(position) }
                guard indirectTable == nil else { throw .nestedIndirect(position) }
                guard !descriptor.hasNext else { throw .indirectWithNext(position) }
                let length = descriptor.length
                guard length != 0, UInt64(length) % SplitRing.descriptorSize == 0 else {
                    throw .indirectTableLength(position, length: length)
                }
                guard let pointer = memory.pointer(descriptor.address, length: UInt64(length)) else {
                    throw .indirectTableOutsideGuestMemory(position, address: descriptor.address, length: length)
                }
                // The chain continues at entry 0 of the table. NEXT is 16 bits,
                // so entries past 65536 are unreachable and a walk longer than
                // that repeats one: the table counts as at most 65536 entries.
                table = UnsafeRawPointer(pointer)
                tableSize = min(Int(UInt64(length) / SplitRing.descriptorSize), 1 << 16)
                indirectTable = index
                index = 0
                visited = 0
                continue
            }

            let length = descriptor.length
            let isWritable = descriptor.isDeviceWritable
            // The device reads the request before writing the reply; the spec
            // puts all readable buffers first, and devices rely on it.
            guard isWritable || count == readableCount else { throw .readableAfterWritable(position) }
            // Never overflows: the running total is at most the limit.
            guard UInt64(length) <= maxChainBytes - (readableLength + writableLength) else {
                throw .chainTooLarge(head: head, limit: maxChainBytes)
            }
            guard let pointer = memory.pointer(descriptor.address, length: UInt64(length)) else {
                throw .bufferOutsideGuestMemory(position, address: descriptor.address, length: length)
            }
            guard count < segmentStorage.count else {
                throw .tooManySegments(head: head, limit: segmentStorage.count)
            }
            segmentStorage.initializeElement(
                at: count,
                to: BufferSegment(
                    guestAddress: descriptor.address, pointer: pointer, length: length, isDeviceWritable: isWritable))
            count += 1
            if isWritable {
                writableLength += UInt64(length)
            } else {
                readableCount += 1
                readableLength += UInt64(length)
            }

            guard descriptor.hasNext else { break }
            guard Int(descriptor.nextIndex) < tableSize else {
                throw .nextOutOfRange(position, next: descriptor.nextIndex, tableSize: tableSize)
            }
            index = descriptor.nextIndex
        }

        return DescriptorChain(
            head: head,
            segments: UnsafeBufferPointer(start: segmentStorage.baseAddress, count: count),
            readableCount: readableCount,
            readableLength: readableLength,
            writableLength: writableLength)
    }
}
