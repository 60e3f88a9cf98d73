import Testing
@testable import XenPV

/// The trampoline's bytes against the offsets the VMM enters them at: a link
/// entered one byte off would run garbage at CPL0.
@Suite struct TrampolineTests {
    let page = Trampoline.codePage

    func bytes(_ offset: Int, _ count: Int) -> [UInt8] { Array(page[offset..<offset + count]) }

    @Test func vectorStubsExitWithTheirVector() {
        for v in 0..<64 { #expect(bytes(v * 8, 3) == [0xe6, UInt8(v), 0xf4]) }
    }

    @Test func linksStartWhereTheVMMEntersThem() {
        typealias L = Trampoline.Link
        #expect(bytes(L.replay, 8) == [0x41, 0x5b, 0xf0, 0x49, 0x83, 0x0b, 0x00, 0xc3])
        #expect(bytes(L.loadCR3, 5) == [0x59, 0x0f, 0x22, 0xd9, 0xc3])
        #expect(bytes(L.flush, 7) == [0x0f, 0x20, 0xd9, 0x0f, 0x22, 0xd9, 0xc3])
        #expect(bytes(L.invlpg, 5) == [0x59, 0x0f, 0x01, 0x39, 0xc3])
        #expect(bytes(L.restore, 5) == [0x59, 0x41, 0x5b, 0x48, 0xcf])
        #expect(bytes(L.iret, 2) == [0x48, 0xcf])
        #expect(bytes(L.more, 3) == [0xe6, 0x40, 0xf4])
    }

    @Test func landingPageStoresToTheDoorbell() {
        let landing = Trampoline.syscallPage
        #expect(Array(landing[0..<2]) == [0x88, 0x05])
        let disp = Int(Int32(bitPattern: UInt32(landing[2]) | UInt32(landing[3]) << 8 | UInt32(landing[4]) << 16 | UInt32(landing[5]) << 24))
        #expect(UInt64(Int(Layout.syscallOffset) + 6 + disp) == Layout.doorbellOffset)
        #expect(landing[6] == 0xf4)
    }
}
