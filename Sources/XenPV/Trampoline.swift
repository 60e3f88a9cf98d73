/// The only code that runs at CPL0 in a PV guest's KVM VM. It is tiny on
/// purpose: on software-nested KVM every CPL0 instruction is emulated.
///
/// - Vector stubs (8 bytes each, vectors 0–63): `out %al, $vector; hlt`. The
///   CPU has already pushed the exception frame on the vCPU's TSS stack; the
///   VMM reads it and never returns into the stub.
/// - The return stub (`returnFull`), entered by the VMM with rsp at the vCPU's
///   return frame. It (1) re-stores each page-table entry listed in the replay
///   list through the hypervisor direct map, so KVM's shadow MMU sees every
///   change the VMM made from user space (KVM only tracks writes done by the
///   guest); (2) loads a new CR3; (3) flushes the TLB or invalidates a list of
///   addresses; (4) optionally swaps GS; then restores rax/rcx/rdx/rdi/rsi and
///   `iretq`s to the guest at CPL3 — or exits with port 0x40 for another round.
/// - `returnFast`: just `iretq`, when nothing else is needed.
/// - The syscall landing page sits at LSTAR. On this KVM `syscall` stays at
///   CPL3, so the page is mapped U=1 and does not run trampoline code: it
///   stores to the doorbell page, which has no memory behind it, and the
///   store exits to the VMM as MMIO. The VMM then resumes the guest by a
///   register write when nothing needs CPL0 (no page-table replay, CR3 load,
///   flush or segment change): a hypercall round trip never enters CPL0.
///
/// Assembled from the listing in Trampoline.S (kept beside this file).
enum Trampoline {
    static let returnFullOffset = 0x200
    static let returnFastOffset = 0x28d

    /// Return-frame field offsets (bytes from the frame base).
    enum Frame {
        static let replayCount = 0x00
        static let replayList = 0x08
        static let newCR3 = 0x10
        static let flushKind = 0x18     // 0 none, 1 full, 2 invlpg list
        static let invlpgCount = 0x20
        static let invlpgList = 0x28
        static let swapGS = 0x30
        static let rax = 0x38
        static let rcx = 0x40
        static let rdx = 0x48
        static let rdi = 0x50
        static let rsi = 0x58
        static let iret = 0x60          // rip, cs, rflags, rsp, ss
        static let moreRounds = 0x88
        static let invlpgListOffset = 0x100   // inline list of up to 64 addresses
        static let invlpgCapacity = 64
    }

    /// The code page: vector stubs at 0x000–0x1ff, then the return stubs.
    static var codePage: [UInt8] {
        var page = [UInt8](repeating: 0xf4, count: 4096)   // hlt everywhere else
        for v in 0..<64 {
            page[v * 8] = 0xe6; page[v * 8 + 1] = UInt8(v); page[v * 8 + 2] = 0xf4
        }
        for (i, b) in returnStub.enumerated() { page[returnFullOffset + i] = b }
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

    /// ret_full .. ret_fast+iretq, then `out %al,$0x40; hlt`.
    static let returnStub: [UInt8] = [
        0x48, 0x89, 0xe6,                    // mov %rsp,%rsi
        0x48, 0x8b, 0x0e,                    // mov (%rsi),%rcx          replay count
        0x48, 0x8b, 0x56, 0x08,              // mov 0x8(%rsi),%rdx       replay list
        0x48, 0x85, 0xc9,                    // 1: test %rcx,%rcx
        0x74, 0x12,                          // je 2f
        0x48, 0x8b, 0x02,                    // mov (%rdx),%rax          entry address
        0x48, 0x8b, 0x38,                    // mov (%rax),%rdi
        0x48, 0x89, 0x38,                    // mov %rdi,(%rax)          re-store: KVM sees it
        0x48, 0x83, 0xc2, 0x08,              // add $8,%rdx
        0x48, 0xff, 0xc9,                    // dec %rcx
        0xeb, 0xe9,                          // jmp 1b
        0x48, 0x8b, 0x46, 0x10,              // 2: mov 0x10(%rsi),%rax   new cr3
        0x48, 0x85, 0xc0,                    // test %rax,%rax
        0x74, 0x03,                          // je 3f
        0x0f, 0x22, 0xd8,                    // mov %rax,%cr3
        0x48, 0x8b, 0x46, 0x18,              // 3: mov 0x18(%rsi),%rax   flush kind
        0x48, 0x83, 0xf8, 0x01,              // cmp $1,%rax
        0x75, 0x08,                          // jne 4f
        0x0f, 0x20, 0xd8,                    // mov %cr3,%rax
        0x0f, 0x22, 0xd8,                    // mov %rax,%cr3
        0xeb, 0x22,                          // jmp 5f
        0x48, 0x83, 0xf8, 0x02,              // 4: cmp $2,%rax
        0x75, 0x1c,                          // jne 5f
        0x48, 0x8b, 0x4e, 0x20,              // mov 0x20(%rsi),%rcx
        0x48, 0x8b, 0x56, 0x28,              // mov 0x28(%rsi),%rdx
        0x48, 0x85, 0xc9,                    // 6: test %rcx,%rcx
        0x74, 0x0f,                          // je 5f
        0x48, 0x8b, 0x02,                    // mov (%rdx),%rax
        0x0f, 0x01, 0x38,                    // invlpg (%rax)
        0x48, 0x83, 0xc2, 0x08,              // add $8,%rdx
        0x48, 0xff, 0xc9,                    // dec %rcx
        0xeb, 0xec,                          // jmp 6b
        0x48, 0x83, 0x7e, 0x30, 0x00,        // 5: cmpq $0,0x30(%rsi)    swapgs?
        0x74, 0x03,                          // je 7f
        0x0f, 0x01, 0xf8,                    // swapgs
        0x48, 0x83, 0xbe, 0x88, 0, 0, 0, 0,  // 7: cmpq $0,0x88(%rsi)    more rounds?
        0x75, 0x1a,                          // jne 8f
        0x48, 0x8b, 0x46, 0x38,              // mov 0x38(%rsi),%rax
        0x48, 0x8b, 0x4e, 0x40,              // mov 0x40(%rsi),%rcx
        0x48, 0x8b, 0x56, 0x48,              // mov 0x48(%rsi),%rdx
        0x48, 0x8b, 0x7e, 0x50,              // mov 0x50(%rsi),%rdi
        0x48, 0x8d, 0x66, 0x60,              // lea 0x60(%rsi),%rsp
        0x48, 0x8b, 0x76, 0x58,              // mov 0x58(%rsi),%rsi
        0x48, 0xcf,                          // ret_fast: iretq
        0xe6, 0x40,                          // 8: out %al,$0x40
        0xf4,                                // hlt
    ]
}
