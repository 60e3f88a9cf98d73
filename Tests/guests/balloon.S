    .code64
/* Balloons frame 0x3000 out and back in, maps it (accepted), unmaps it,
   balloons it out again and maps it: refused, which stops the guest. */
_start:
    mov 88(%rsi), %r12          /* pt_base: the L4's virtual address */
    movabs $0xffffffff80000000, %rcx
    sub %rcx, %r12              /* machine address of L4 entry 0 */
    mov %r12, req(%rip)
    lea list(%rip), %rax
    mov %rax, res(%rip)         /* extent_start */

    mov $1, %edi                /* decrease_reservation */
    call memop
    cmp $1, %rax
    jne fail
    mov $6, %edi                /* populate_physmap */
    call memop
    cmp $1, %rax
    jne fail
    cmpq $0x3000, list(%rip)    /* the frame it gave */
    jne fail

    call mmu                    /* L4[0] -> frame 0x3000 as an L3: accepted */
    test %rax, %rax
    jne fail
    movq $0, req+8(%rip)        /* and unhooked again */
    call mmu
    test %rax, %rax
    jne fail

    xor %edi, %edi              /* console_io write */
    mov $(msgend - msg), %esi
    lea msg(%rip), %rdx
    mov $18, %eax
    syscall

    mov $1, %edi                /* out again */
    call memop
    cmp $1, %rax
    jne fail
    movq $0x3000007, req+8(%rip)
    call mmu                    /* refused: the domain stops here */
fail:
    lea reason(%rip), %rsi
    mov $2, %edi                /* shutdown(crash) */
    mov $29, %eax
    syscall
1:  jmp 1b

memop:
    lea res(%rip), %rsi
    mov $12, %eax
    syscall
    ret
mmu:
    lea req(%rip), %rdi
    mov $1, %esi
    xor %edx, %edx
    mov $0x7ff0, %r10d
    mov $1, %eax
    syscall
    ret

    .balign 8
req:    .quad 0, 0x3000007
res:    .quad 0, 1              /* extent_start, nr_extents */
        .long 0, 0              /* extent_order, mem_flags */
        .word 0x7ff0, 0, 0, 0   /* DOMID_SELF */
list:   .quad 0x3000
reason: .long 3
msg:    .ascii "ballooned out and in\n"
msgend:
