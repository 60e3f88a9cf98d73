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
    .balign 8
/* return stub: rsp = per-vCPU return frame */
ret_full:
    mov %rsp, %rsi
    mov 0x00(%rsi), %rcx
    mov 0x08(%rsi), %rdx
1:  test %rcx, %rcx
    jz 2f
    mov (%rdx), %rax
    mov (%rax), %rdi
    mov %rdi, (%rax)
    add $8, %rdx
    dec %rcx
    jmp 1b
2:  mov 0x10(%rsi), %rax
    test %rax, %rax
    jz 3f
    mov %rax, %cr3
3:  mov 0x18(%rsi), %rax
    cmp $1, %rax
    jne 4f
    mov %cr3, %rax
    mov %rax, %cr3
    jmp 5f
4:  cmp $2, %rax
    jne 5f
    mov 0x20(%rsi), %rcx
    mov 0x28(%rsi), %rdx
6:  test %rcx, %rcx
    jz 5f
    mov (%rdx), %rax
    invlpg (%rax)
    add $8, %rdx
    dec %rcx
    jmp 6b
5:  cmpq $0, 0x30(%rsi)
    je 7f
    swapgs
7:  cmpq $0, 0x88(%rsi)
    jne 8f
    mov 0x38(%rsi), %rax
    mov 0x40(%rsi), %rcx
    mov 0x48(%rsi), %rdx
    mov 0x50(%rsi), %rdi
    lea 0x60(%rsi), %rsp
    mov 0x58(%rsi), %rsi
ret_fast:
    iretq
8:  outb %al, $0x40
    hlt
    .balign 64
syscall_entry:
    outb %al, $0x41
    hlt
