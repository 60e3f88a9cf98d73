/// Where a descriptor sits, for error messages: its chain, and its index in
/// the descriptor table or in an indirect table.
public struct DescriptorPosition: Sendable, Hashable, CustomStringConvertible {
    /// The chain's head index in the descriptor table (the id the driver gets back).
    public var head: UInt16
    /// Index in the descriptor table, or in the indirect table if `indirectTable` is set.
    public var index: UInt16
    /// The descriptor-table index of the descriptor pointing at the indirect
    /// table this descriptor lives in, or nil for the descriptor table itself.
    public var indirectTable: UInt16?

    public init(head: UInt16, index: UInt16, indirectTable: UInt16? = nil) {
        self.head = head
        self.index = index
        self.indirectTable = indirectTable
    }

    public var description: String {
        if let indirectTable {
            return "indirect descriptor \(index) (table of descriptor \(indirectTable), chain \(head))"
        }
        return index == head ? "descriptor \(index)" : "descriptor \(index) (chain \(head))"
    }
}
