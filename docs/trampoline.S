/*
 * The CPL0 code of a Xenolith PV guest (Sources/XenPV/Trampoline.swift holds
 * the bytes). On software-nested KVM every instruction here is emulated, so
 * each piece is as short as it can be. Assemble with `as` to check the bytes.
 */
    .code64
    .text
/* exception and interrupt stubs: one 8-byte slot per vector 0..63; port = vector */
    .globl vectors
vectors:
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63
    .balign 8
    outb %al, $\v
    hlt
    .endr

/*
 * Return links at 0x200. The VMM writes a chain at the end of the vCPU's
 * replay area: [link, operands...] [link, operands...] ... [iret frame], sets
 * rip to the first link and rsp to its operands. Each link ends in `ret`,
 * which pops the next link. rcx and r11 are the only scratch registers.
 */
    .balign 8
link_replay:            /* re-store one PTE through the direct map: KVM sees the write */
    pop %r11
    lock orq $0, (%r11)
    ret
link_load_cr3:
    pop %rcx
    mov %rcx, %cr3
    ret
link_flush:
    mov %cr3, %rcx
    mov %rcx, %cr3
    ret
link_invlpg:
    pop %rcx
    invlpg (%rcx)
    ret
link_restore:           /* the guest's rcx and r11, when it still needs them */
    pop %rcx
    pop %r11
link_iret:
    iretq
link_more:              /* replay list longer than one chain: ask for another round */
    outb %al, $0x40
    hlt

/* The syscall landing page (LSTAR; runs at CPL3 on this KVM): a store to the
 * doorbell page, which has no memory behind it, exits to the VMM as MMIO. */
    .balign 4096
syscall_landing:
    movb %al, doorbell(%rip)
    hlt
    .balign 4096
    .skip 4096
doorbell:
