/// The only code that runs at CPL0 in a PV guest's KVM VM. It is tiny on
/// purpose: on software-nested KVM every CPL0 instruction is emulated.
///
/// - Vector stubs (8 bytes each, vectors 0–63): `out %al, $vector; hlt`. The
///   CPU has already pushed the exception frame on the vCPU's TSS stack; the
///   VMM reads it and never returns into the stub.
/// - Return links, chained like return addresses: the VMM writes a chain of
///   link addresses and their operands at the end of the vCPU's replay area,
///   enters the first link with rsp at its operands, and each link ends in a
///   `ret` to the next. Every CPL0 instruction costs an emulation on this
///   KVM, so the VMM asks for just the work a return needs, a few
///   instructions a piece: re-store one page-table entry through the
///   hypervisor direct map so KVM's shadow MMU sees a change the VMM made
///   from user space (KVM only tracks writes done by the guest); load CR3;
///   flush the TLB; invalidate one address; restore rcx and r11 (the links'
///   scratch registers) when the guest still needs them; `iretq` to the
///   guest at CPL3; or exit with port 0x40 for another round.
/// - The syscall landing page sits at LSTAR. On this KVM `syscall` stays at
///   CPL3, so the page is mapped U=1 and does not run trampoline code: it
///   stores to the doorbell page, which has no memory behind it, and the
///   store exits to the VMM as MMIO. The VMM then resumes the guest by a
///   register write when nothing needs CPL0 (no page-table replay, CR3 load,
///   flush or segment change): a hypercall round trip never enters CPL0.
///
/// Assembled from the listing in Trampoline.S (kept beside this file).
enum Trampoline {
    /// Offsets of the return links in the code page (see `links`).
    enum Link {
        static let replay = 0x200       // pop %r11; lock orq $0,(%r11); ret
        static let loadCR3 = 0x208      // pop %rcx; mov %rcx,%cr3; ret
        static let flush = 0x20d        // mov %cr3,%rcx; mov %rcx,%cr3; ret
        static let invlpg = 0x214       // pop %rcx; invlpg (%rcx); ret
        static let restore = 0x219      // pop %rcx; pop %r11; (iret)
        static let iret = 0x21c         // iretq
        static let more = 0x21e         // out %al,$0x40; hlt

        static func address(_ offset: Int) -> UInt64 { Layout.trampolineVirtual + Layout.codeOffset + UInt64(offset) }
    }

    /// The code page: vector stubs at 0x000–0x1ff, then the return links.
    static var codePage: [UInt8] {
        var page = [UInt8](repeating: 0xf4, count: 4096)   // hlt everywhere else
        for v in 0..<64 {
            page[v * 8] = 0xe6; page[v * 8 + 1] = UInt8(v); page[v * 8 + 2] = 0xf4
        }
        for (i, b) in links.enumerated() { page[Link.replay + i] = b }
        return page
    }

    static var syscallPage: [UInt8] {
        var page = [UInt8](repeating: 0xf4, count: 4096)
        // mov %al, doorbell(%rip): an MMIO exit from CPL3.
        let disp = Int32(Layout.doorbellOffset - Layout.syscallOffset - 6)
        page[0] = 0x88; page[1] = 0x05
        withUnsafeBytes(of: disp.littleEndian) { for i in 0..<4 { page[2 + i] = $0[i] } }
        page[6] = 0xf4
        return page
    }

    /// The return links, from `Link.replay` on (source: docs/trampoline.S).
    static let links: [UInt8] = [
        0x41, 0x5b,                          // replay:   pop %r11
        0xf0, 0x49, 0x83, 0x0b, 0x00,        //           lock orq $0,(%r11)
        0xc3,                                //           ret
        0x59,                                // load_cr3: pop %rcx
        0x0f, 0x22, 0xd9,                    //           mov %rcx,%cr3
        0xc3,                                //           ret
        0x0f, 0x20, 0xd9,                    // flush:    mov %cr3,%rcx
        0x0f, 0x22, 0xd9,                    //           mov %rcx,%cr3
        0xc3,                                //           ret
        0x59,                                // invlpg:   pop %rcx
        0x0f, 0x01, 0x39,                    //           invlpg (%rcx)
        0xc3,                                //           ret
        0x59,                                // restore:  pop %rcx
        0x41, 0x5b,                          //           pop %r11
        0x48, 0xcf,                          // iret:     iretq
        0xe6, 0x40,                          // more:     out %al,$0x40
        0xf4,                                //           hlt
    ]
}
